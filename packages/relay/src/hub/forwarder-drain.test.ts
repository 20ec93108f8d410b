// Goal: the forwarder drains a store queue the way head office needs it (`forwarder.ts`
// invariants 1, 2, 6 and 7), with a real hub store on a fresh file and a fake link whose pushes
// the test answers: never more than `FORWARD_IN_FLIGHT_MAX` pushes in flight and no row in two
// at once; each register's entries sent in clientSeq order; the next push sent as soon as one is
// answered, before its results are recorded; the rows in flight are not read again to build the
// next batch (a drain reads each row about once); a dropped push's rows are sent again, and every
// entry ends settled exactly once. And (invariant 8) an entry head office deferred or gapped is
// sent again only when its wait is over or the link is new, while the rest goes on.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pino from 'pino'
import { afterEach, describe, expect, it } from 'vitest'
import type { Entry } from '@ledgerline/core'
import type { AckResult, RelayLimitsAdvertised, UpstreamState } from '@ledgerline/protocol'
import { makeEntry, TENANT } from '../edges.test-helper.ts'
import { createForwarder } from './forwarder.ts'
import { manualTimers } from './hub.test-helper.ts'
import { FORWARD_IN_FLIGHT_MAX, FORWARD_RETRY_MS } from './hub-limits.ts'
import { HUB_FILE, openHubStore } from './hub-store.ts'
import type { HubStore } from './hub-store.ts'
import type { UpstreamLink } from './upstream-link.ts'

const REGISTERS = 4
const SALES = 600
const PUSH_ENTRIES = 100
const LIMITS: RelayLimitsAdvertised = {
  pushEntriesMax: PUSH_ENTRIES,
  pushBytesMax: 1_000_000,
  entryDataBytesMax: 64_000,
  pushInFlightMax: FORWARD_IN_FLIGHT_MAX,
}
const clientIdOf = (r: number): string => String(r).repeat(32)

const undo: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const u of undo.splice(0).reverse()) await u()
})

interface Push {
  readonly entries: readonly Entry[]
  /** Rows of the store still open when this push was sent. */
  readonly openAtSend: number
  resolve(results: AckResult[]): void
  reject(error: Error): void
}

/** A link that is up and hands every push to the test. */
function fakeLink(store: HubStore) {
  const pushes: Push[] = []
  const listeners = new Set<(s: UpstreamState) => void>()
  let connected = true
  const link: UpstreamLink = {
    state: () => ({ connected, since: 0 }),
    mirror: () => ({ _tag: 'mirroring' }),
    limits: () => (connected ? LIMITS : undefined),
    forwardGrant: () => ['*'],
    onState(l) {
      listeners.add(l)
      return () => listeners.delete(l)
    },
    push(entries) {
      return new Promise<AckResult[]>((resolve, reject) => {
        pushes.push({ entries, openAtSend: store.openCount(), resolve, reject })
      })
    },
    hold: () => {},
    close: async () => {},
  }
  const setConnected = (up: boolean) => {
    connected = up
    for (const l of listeners) l({ connected: up, since: 0 })
  }
  return { link, pushes, setConnected }
}

async function queuedStore(
  registers = REGISTERS,
  sales = SALES,
): Promise<{ store: HubStore; reads: () => number }> {
  const dir = mkdtempSync(join(tmpdir(), 'll-forwarder-'))
  const store = openHubStore(join(dir, HUB_FILE))
  undo.push(async () => {
    await store.close()
    rmSync(dir, { recursive: true, force: true })
  })
  // Registers' sales interleaved as they arrive: register r's sale s is clientSeq s.
  for (let s = 1; s <= sales; s += 50) {
    for (let r = 1; r <= registers; r++) {
      const items = []
      for (let k = s; k < Math.min(s + 50, sales + 1); k++) {
        items.push({ entry: makeEntry(clientIdOf(r), k, `sale/${r}-${k}`, 'sold', { k }) })
      }
      await store.append(TENANT, items, {
        subject: `register-${r}`,
        grants: { read: ['*'], write: ['*'] },
      })
    }
  }
  let read = 0
  const open = store.open.bind(store)
  store.open = (limit, afterSeq) => {
    const rows = open(limit, afterSeq)
    read += rows.length
    return rows
  }
  return { store, reads: () => read }
}

const appended = (
  e: Entry,
  offset: number,
  status: 'appended' | 'duplicate' = 'appended',
): AckResult => ({
  id: e.id,
  status,
  version: 1,
  partition: 0,
  offset,
  committedAt: 1,
  corrections: [],
})

const tick = () => new Promise((resolve) => setImmediate(resolve))

describe('the forwarder drains a store queue', () => {
  it('keeps head office fed: bounded pushes, in order, the next before bookkeeping, each row read about once', async () => {
    const { store, reads } = await queuedStore()
    const total = REGISTERS * SALES
    const { link, pushes } = fakeLink(store)
    const forwarder = createForwarder(store, link, pino({ level: 'silent' }))
    // Pushes left unanswered (a failed assertion) end as dropped, so closing does not wait.
    undo.push(() => {
      for (const p of pushes) p.reject(new Error('test over'))
      return forwarder.close()
    })
    forwarder.wake()
    const answered = new Map<string, number>()
    const lastSeq = new Map<string, number>()
    let answeredCount = 0
    let maxInFlight = 0
    const early: boolean[] = []
    for (let step = 0; step < 1_000 && answeredCount < total; step++) {
      await tick()
      const waiting = pushes.filter((p) => !(p as { done?: boolean }).done)
      maxInFlight = Math.max(maxInFlight, waiting.length)
      const inFlightIds = waiting.flatMap((p) => p.entries.map((e) => e.id))
      expect(new Set(inFlightIds).size).toBe(inFlightIds.length)
      const oldest = waiting[0]
      if (oldest === undefined) break
      ;(oldest as { done?: boolean }).done = true
      const before = pushes.length
      oldest.resolve(oldest.entries.map((e) => appended(e, ++answeredCount)))
      await tick()
      // Invariant 7: a push was sent while the answered one's rows were still open.
      const next = pushes[before]
      if (next !== undefined && answeredCount < total - PUSH_ENTRIES * FORWARD_IN_FLIGHT_MAX) {
        early.push(next.openAtSend >= total - answeredCount + PUSH_ENTRIES)
      }
      for (const e of oldest.entries) answered.set(e.id, (answered.get(e.id) ?? 0) + 1)
    }
    expect(maxInFlight).toBeLessThanOrEqual(FORWARD_IN_FLIGHT_MAX)
    expect(maxInFlight).toBe(FORWARD_IN_FLIGHT_MAX)
    expect(early.length).toBeGreaterThan(10)
    expect(early.every(Boolean)).toBe(true)
    for (const p of pushes) {
      for (const e of p.entries) {
        // Invariant 1: each register's entries go in clientSeq order, across pushes too.
        expect(e.clientSeq).toBeGreaterThan(lastSeq.get(e.clientId) ?? 0)
        lastSeq.set(e.clientId, e.clientSeq)
      }
    }
    expect(answered.size).toBe(total)
    expect([...answered.values()].every((n) => n === 1)).toBe(true)
    expect(store.openCount()).toBe(0)
    // Invariant 6: building each batch does not decode the batches in flight again.
    expect(reads()).toBeLessThanOrEqual(total * 1.25)
  })

  it('sends a dropped push again, and every entry lands once', async () => {
    const { store } = await queuedStore()
    const total = REGISTERS * SALES
    const { link, pushes, setConnected } = fakeLink(store)
    const forwarder = createForwarder(store, link, pino({ level: 'silent' }))
    // Pushes left unanswered (a failed assertion) end as dropped, so closing does not wait.
    undo.push(() => {
      for (const p of pushes) p.reject(new Error('test over'))
      return forwarder.close()
    })
    forwarder.wake()
    await tick()
    expect(pushes.length).toBe(FORWARD_IN_FLIGHT_MAX)
    // Answer the first, then the link drops with the other three in flight.
    const [first, ...dropped] = pushes.splice(0)
    first?.resolve(first.entries.map((e, i) => appended(e, i + 1)))
    await tick()
    setConnected(false)
    for (const p of [...dropped, ...pushes.splice(0)]) p.reject(new Error('link dropped'))
    await tick()
    setConnected(true)
    const landed = new Map<string, number>()
    for (const e of first?.entries ?? []) landed.set(e.id, 1)
    let offset = PUSH_ENTRIES
    for (let step = 0; step < 1_000 && store.openCount() > 0; step++) {
      await tick()
      const p = pushes.shift()
      if (p === undefined) continue
      // Head office dedupes a resend: an entry it holds already is a duplicate.
      p.resolve(
        p.entries.map((e) =>
          landed.has(e.id) ? appended(e, 0, 'duplicate') : appended(e, ++offset),
        ),
      )
      for (const e of p.entries) landed.set(e.id, (landed.get(e.id) ?? 0) + 1)
    }
    expect(store.openCount()).toBe(0)
    const resentDropped = dropped.flatMap((p) => p.entries.map((e) => e.id))
    expect(resentDropped.every((id) => landed.get(id) === 1)).toBe(true)
    expect(landed.size).toBe(total)
  })
})

describe('the forwarder waits for what head office has not decided', () => {
  const deferred = (e: Entry, retryAfterMs: number): AckResult => ({
    id: e.id,
    status: 'deferred',
    code: 'unknown_type',
    reason: 'no entity type',
    retryAfterMs,
  })
  const gapped = (e: Entry): AckResult => ({
    id: e.id,
    status: 'refused',
    code: 'seq_gap',
    reason: 'an earlier entry is missing',
    head: 0,
  })
  /** Lets the forwarder's promise chains run; no timer fires (the clock is the test's). */
  const settle = async () => {
    for (let i = 0; i < 10; i++) await tick()
  }
  /** A forwarder on the test's clock over a fresh queue, woken and let run to its first push. */
  const started = async (registers: number, sales: number) => {
    const { store } = await queuedStore(registers, sales)
    const timers = manualTimers()
    const { link, pushes, setConnected } = fakeLink(store)
    const forwarder = createForwarder(store, link, pino({ level: 'silent' }), timers)
    undo.push(() => {
      for (const p of pushes) p.reject(new Error('test over'))
      return forwarder.close()
    })
    forwarder.wake()
    await settle()
    return { store, timers, pushes, setConnected }
  }

  it("sends a deferred entry again after head office's retryAfterMs, or on a new link, and the rest meanwhile", async () => {
    // Finding G: head office deferred a forwarded entry (`unknown_type`, retry in a minute); the
    // forwarder sent it again the moment the answer was recorded, ~40 times a second for good.
    const { store, timers, pushes, setConnected } = await started(2, 2)
    expect(pushes.map((p) => p.entries.length)).toEqual([4])
    const [first] = pushes as [Push]
    const late = first.entries[0] as Entry
    let offset = 0
    first.resolve(
      first.entries.map((e) => (e === late ? deferred(e, 60_000) : appended(e, ++offset))),
    )
    await settle()
    // Not at once: head office said when to ask again.
    expect(pushes.length).toBe(1)
    expect(store.openCount()).toBe(1)
    // A register's new sale goes meanwhile; the deferred entry stays back.
    await store.append(TENANT, [{ entry: makeEntry(clientIdOf(2), 3, 'sale/2-3', 'sold', {}) }], {
      subject: 'register-2',
      grants: { read: ['*'], write: ['*'] },
    })
    await settle()
    expect(pushes.map((p) => p.entries.map((e) => e.id))).toEqual([
      first.entries.map((e) => e.id),
      [`${clientIdOf(2)}-3`],
    ])
    pushes[1]?.resolve([appended(pushes[1].entries[0] as Entry, ++offset)])
    await settle()
    await timers.advance(60_000 - 1)
    await settle()
    expect(pushes.length).toBe(2)
    await timers.advance(1)
    await settle()
    expect(pushes.map((p) => p.entries.map((e) => e.id))[2]).toEqual([late.id])
    // Deferred again; then the link is new (head office restarted, maybe upgraded): at once.
    pushes[2]?.resolve([deferred(late, 60_000)])
    await settle()
    expect(pushes.length).toBe(3)
    setConnected(false)
    setConnected(true)
    await settle()
    expect(pushes.map((p) => p.entries.map((e) => e.id))[3]).toEqual([late.id])
    pushes[3]?.resolve([appended(late, ++offset)])
    await settle()
    expect(store.openCount()).toBe(0)
  })

  it('sends a gapped entry again after FORWARD_RETRY_MS, its later ones with it', async () => {
    const { store, timers, pushes } = await started(1, 2)
    const [first] = pushes as [Push]
    first.resolve(first.entries.map(gapped))
    await settle()
    expect(pushes.length).toBe(1)
    await timers.advance(FORWARD_RETRY_MS)
    await settle()
    expect(pushes.map((p) => p.entries.map((e) => e.id))[1]).toEqual(first.entries.map((e) => e.id))
    let offset = 0
    pushes[1]?.resolve((pushes[1]?.entries ?? []).map((e) => appended(e, ++offset)))
    await settle()
    expect(store.openCount()).toBe(0)
  })
})
