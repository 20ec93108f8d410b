// Goal: issue 12 case 8, the relay's half — a live session swaps its token with `renew {token}`
// and gets `renewed {expiresAt, grants}`: it outlives the old token's expiry on the same socket,
// with acks and subscriptions untouched. A renewal may not change who the session is: a token of
// another subject (or tenant) ends the session with `unauthorized`. On 3a8bfae `renew` is not a
// message: the relay answers `bad_message` and closes, and the session dies at the old expiry.
// Method: the real relay (SQLite; the store plays no part), a wire client; the first token lives
// 2 s, the session is used again 3 s later.
import { describe, expect, it } from 'vitest'
import type { RelayMessage } from '@ledgerline/protocol'
import {
  errorKindOf,
  isRenewed,
  makeEntry,
  pushAcked,
  renewMessage,
  token,
  useEdgeRelays,
} from './edges.test-helper.ts'
import { sleep } from './wire-client.test-helper.ts'

const TILL = '4e'.repeat(16)
const edge = useEdgeRelays()

describe('issue 12 case 8: renewing the token of a live session', () => {
  it('swaps the token on the live socket and outlives the old one', async () => {
    const relay = await edge.start('sqlite')
    const till = await edge.connect(relay.url, TILL, { expiresInS: 2 })
    till.send({ type: 'subscribe', sub: 1, scope: ['order/*'], cursors: {}, credit: 8 })
    await pushAcked(till, 1, [makeEntry(TILL, 1, 'order/r1', 'order.line', { n: 1 })])

    till.send(renewMessage(await token({ expiresInS: 3600 })))
    const answer = await till.next((m) => isRenewed(m) || m.type === 'error')
    expect(answer.type === 'error' ? `error ${String(errorKindOf(answer))}` : answer.type).toBe(
      'renewed',
    )
    expect((answer as unknown as { expiresAt: number }).expiresAt).toBeGreaterThan(
      Date.now() + 3_000_000,
    )
    await sleep(3_000) // past the first token's expiry
    expect(till.ws.readyState).toBe(till.ws.OPEN)
    const [result] = await pushAcked(till, 2, [
      makeEntry(TILL, 2, 'order/r1', 'order.line', { n: 2 }),
    ])
    expect(result?.status).toBe('appended')
    // The subscription is untouched: both entries arrive on it.
    const seen = new Set<string>()
    const deadline = Date.now() + 5_000
    while (seen.size < 2 && Date.now() < deadline) {
      const page = await till.next((m: RelayMessage) => m.type === 'entries', 5_000)
      if (page.type === 'entries') for (const e of page.entries) seen.add(e.id)
    }
    expect(seen).toEqual(new Set([`${TILL}-1`, `${TILL}-2`]))
  }, 30_000)

  it('ends the session with unauthorized when the new token is of another subject', async () => {
    const relay = await edge.start('sqlite')
    const till = await edge.connect(relay.url, TILL, { sub: 'till-1' })
    till.send(renewMessage(await token({ sub: 'someone-else' })))
    const answer = await till.next((m) => isRenewed(m) || m.type === 'error')
    expect(errorKindOf(answer)).toBe('unauthorized')
    expect((await till.closed).code).toBe(4401)
  })

  it('keeps a session it welcomed within the clock tolerance past exp until that tolerance ends', async () => {
    // Found by the product simulation (expiring tokens, seed 286): `hello` accepts a token up to
    // TOKEN_CLOCK_TOLERANCE_S past its exp, but the session's expiry timer fired at exp, so the
    // welcome was followed at once by `token_expired`; every welcome reset the client's backoff,
    // and a till whose token function served that token reconnected ~4 times a second.
    const relay = await edge.start('sqlite')
    const till = await edge.connect(relay.url, TILL, { expiresInS: -1 })
    await sleep(500) // well inside the 4 s left of the tolerance
    expect(till.ws.readyState).toBe(till.ws.OPEN)
    const [result] = await pushAcked(till, 1, [
      makeEntry(TILL, 1, 'order/r1', 'order.line', { n: 1 }),
    ])
    expect(result?.status).toBe('appended')
    // It still ends: at exp + tolerance.
    const ended = await till.next((m) => m.type === 'error', 10_000)
    expect(errorKindOf(ended)).toBe('token_expired')
  }, 30_000)
})
