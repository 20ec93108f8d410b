// Goal: the status bar names the real reason a register is not sending, and drops it as soon
// as the cause is gone. Method: feed the pure classifier each cause alone, then with causes
// removed one by one.
import { describe, expect, it } from 'vitest'
import { CONNECTING_GRACE_MS, connectionReason, reasonWords } from './connection.ts'

const up = {
  online: true,
  syncing: false,
  outboxEntries: 0,
  lastServerContactAt: 1,
  lastError: null,
}
const down = { ...up, online: false }
const late = CONNECTING_GRACE_MS + 1
const base = { status: down, networkOff: false, token: null, sinceOpenMs: late } as const

describe('connectionReason', () => {
  it('online, and sending while the outbox drains', () => {
    expect(connectionReason({ ...base, status: up })._tag).toBe('online')
    expect(connectionReason({ ...base, status: { ...up, outboxEntries: 3 } })._tag).toBe('sending')
  })

  it('no network wins over every other cause', () => {
    const refused = { ...down, lastError: { kind: 'unauthorized', message: '' } }
    expect(connectionReason({ ...base, status: refused, networkOff: true })._tag).toBe('no_network')
  })

  it('a refused or expired sign-in is not authorised', () => {
    for (const kind of ['unauthorized', 'forbidden']) {
      const status = { ...down, lastError: { kind, message: '' } }
      expect(connectionReason({ ...base, status })).toEqual({
        _tag: 'not_authorised',
        expired: false,
      })
    }
    const expired = { ...down, lastError: { kind: 'token_expired', message: '' } }
    expect(connectionReason({ ...base, status: expired })).toEqual({
      _tag: 'not_authorised',
      expired: true,
    })
    // The issuer itself said no: the client only saw a failed token call.
    const tokenFailed = { ...down, lastError: { kind: 'token', message: 'refused (403)' } }
    expect(connectionReason({ ...base, status: tokenFailed, token: 'refused' })._tag).toBe(
      'not_authorised',
    )
  })

  it('a relay that does not answer is head office unreachable, after a short grace', () => {
    const tokenFailed = { ...down, lastError: { kind: 'token', message: 'Failed to fetch' } }
    expect(connectionReason({ ...base, status: tokenFailed, token: 'unreachable' })._tag).toBe(
      'head_office_unreachable',
    )
    // A socket that closed after it had been welcomed: no error, but it had answered before.
    expect(connectionReason({ ...base, status: down, sinceOpenMs: 0 })._tag).toBe(
      'head_office_unreachable',
    )
    const fresh = { ...down, lastServerContactAt: null }
    expect(connectionReason({ ...base, status: fresh, sinceOpenMs: 0 })._tag).toBe('connecting')
    expect(connectionReason({ ...base, status: fresh })._tag).toBe('head_office_unreachable')
  })

  it('a reason goes when its cause goes', () => {
    const refused = { ...down, lastError: { kind: 'unauthorized', message: '' } }
    expect(connectionReason({ ...base, status: refused })._tag).toBe('not_authorised')
    // Welcomed again: the client clears lastError and is online.
    expect(
      connectionReason({ ...base, status: { ...refused, online: true, lastError: null } })._tag,
    ).toBe('online')
    expect(connectionReason({ ...base, status: up, token: null })._tag).toBe('online')
  })

  it('on a store hub that cannot reach head office: store only, and online once it can', () => {
    const hub = { role: 'hub' as const }
    const cut = { ...up, relay: hub, headOffice: 'unreachable' as const }
    expect(connectionReason({ ...base, status: cut })._tag).toBe('store_only')
    expect(reasonWords({ _tag: 'store_only' }).badge).toBe('store')
    expect(connectionReason({ ...base, status: { ...cut, headOffice: 'reachable' } })._tag).toBe(
      'online',
    )
    // Head office itself never says it cannot reach head office; the hub's word goes offline.
    const direct = { ...cut, relay: { role: 'head_office' as const } }
    expect(connectionReason({ ...base, status: direct })._tag).toBe('online')
    expect(connectionReason({ ...base, status: { ...cut, online: false } })._tag).toBe(
      'head_office_unreachable',
    )
    expect(connectionReason({ ...base, status: cut, networkOff: true })._tag).toBe('no_network')
  })

  it('words: one badge and no raw error kinds', () => {
    const words = reasonWords({ _tag: 'not_authorised', expired: false })
    expect(words.badge).toBe('offline')
    expect(words.title).toBe('Not authorised')
    expect(words.detail).toMatch(/sign in again/)
    expect(JSON.stringify(words)).not.toMatch(/unauthorized|token_expired/)
  })
})
