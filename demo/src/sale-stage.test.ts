// Goal: a receipt's badge shows a sale as far as its least advanced entry: on this register
// while any entry is only here, in the store while the hub holds the rest, at head office once
// head office answered every one (a refusal is head office's answer too). Also the store hub's
// answer parsing and the order of a register's relays. Method: the pure functions, fed each case.
import { describe, expect, it } from 'vitest'
import type { Outcome } from './pos-client.ts'
import { saleStage, stageWords } from './sale-stage.ts'

// store-hub.ts loads the register's socket class, which extends the browser's WebSocket: Node 20
// has none, so a class that makes no socket stands in (nothing here opens one).
class NoSocket {
  constructor() {
    throw new Error('no sockets in this test')
  }
}
;(globalThis as { WebSocket?: unknown }).WebSocket ??= NoSocket
const { parseAnswer, relayUrls } = await import('./store-hub.ts')

const device: Outcome = { _tag: 'outbox', stage: 'device' }
const store: Outcome = { _tag: 'outbox', stage: 'store' }
const appended: Outcome = {
  _tag: 'appended',
  version: 1,
  partition: 0,
  offset: 1,
  committedAt: 1,
}
const refused: Outcome = { _tag: 'refused', code: 'forbidden', reason: 'no', head: 0 }

describe('saleStage', () => {
  it('is as far as the least advanced entry', () => {
    expect(saleStage([store, device, appended])).toBe('device')
    expect(saleStage([store, appended, store])).toBe('store')
    expect(saleStage([appended, refused])).toBe('head_office')
    expect(saleStage([appended, undefined])).toBe('device')
  })

  it('has words for each stage', () => {
    expect(new Set((['device', 'store', 'head_office'] as const).map(stageWords)).size).toBe(3)
    expect(stageWords('store')).toMatch(/in the store/)
  })
})

describe('store hub answers', () => {
  it('reads the hub answer, and nothing else', () => {
    expect(parseAnswer({ connected: false, linkUp: false, upstream: ['ws://hq/sync'] })).toEqual({
      isHub: true,
      upstream: ['ws://hq/sync'],
      internet: false,
    })
    for (const bad of [null, 'x', { connected: 'no', upstream: [] }, { connected: true }]) {
      expect(parseAnswer(bad)).toBeUndefined()
    }
  })

  it('puts the page relay first, then head office, only on a hub', () => {
    const hub = { isHub: true, upstream: ['ws://hq/sync', 'ws://own/sync'], internet: true }
    expect(relayUrls(hub, 'ws://own/sync')).toEqual(['ws://own/sync', 'ws://hq/sync'])
    expect(relayUrls({ ...hub, isHub: false }, 'ws://own/sync')).toEqual(['ws://own/sync'])
  })
})
