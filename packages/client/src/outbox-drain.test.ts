// Goal: the outbox drain's promises: batches in clientSeq order within PUSH_BATCH_ENTRIES_MAX
// and PUSH_BATCHES_IN_FLIGHT_MAX, one read for many kicks within DRAIN_DELAY_MS, no read after
// an ack of a short batch, the whole outbox again after a reset or a resend, nothing on a
// socket that is no longer current.
// Method: an in-memory client store holding the outbox, a socket stand-in, a manual scheduler.
import { describe, expect, it } from 'vitest'
import type { Message } from '@ledgerline/protocol'
import { CLIENT, entry, NOW } from '../test-support/entries.ts'
import { createManualScheduler, settle } from '../test-support/manual-scheduler.ts'
import type { ClientStore } from './client-store.ts'
import { DRAIN_DELAY_MS, PUSH_BATCH_ENTRIES_MAX, PUSH_BATCHES_IN_FLIGHT_MAX } from './limits.ts'
import { createMemoryClientStore } from './memory-client-store.ts'
import { createOutboxDrain } from './outbox-drain.ts'
import type { WebSocketLike } from './transport.ts'

async function setup(count: number) {
  const store = createMemoryClientStore()
  await store.init(() => CLIENT, NOW)
  await fill(store, count)
  let reads = 0
  const counted: ClientStore = {
    ...store,
    readOutbox: (...args) => (reads++, store.readOutbox(...args)),
  }
  const scheduler = createManualScheduler()
  const ws = {} as WebSocketLike
  let current: WebSocketLike | undefined = ws
  const pushes: { batch: number; seqs: number[] }[] = []
  const drain = createOutboxDrain({
    clientStore: counted,
    scheduler,
    isCurrent: (s) => s === current,
    ready: () => current,
    send: (_s, m: Message) => {
      if (m.type === 'push')
        pushes.push({ batch: m.batch, seqs: m.entries.map((e) => e.clientSeq) })
      return true
    },
    sent: () => {},
    failed: (message) => {
      throw new Error(message)
    },
  })
  return {
    store,
    drain,
    scheduler,
    ws,
    pushes,
    reads: () => reads,
    setCurrent: (s: WebSocketLike | undefined) => (current = s),
  }
}

async function fill(store: ClientStore, count: number) {
  for (let done = 0; done < count; done += 500) {
    const n = Math.min(500, count - done)
    await store.append(
      (c, f) => Array.from({ length: n }, (_, i) => entry(c, f + i)),
      { entriesMax: 1e6, bytesMax: 1e12 },
      NOW,
      () => 100,
    )
  }
}

describe('outbox drain', () => {
  it('pushes in clientSeq order, in bounded batches, never more in flight than allowed', async () => {
    const total = PUSH_BATCH_ENTRIES_MAX * (PUSH_BATCHES_IN_FLIGHT_MAX + 2) + 7
    const t = await setup(total)
    t.drain.drain(t.ws)
    await settle()
    expect(t.pushes.length).toBe(PUSH_BATCHES_IN_FLIGHT_MAX)
    expect(t.drain.inFlight()).toBe(PUSH_BATCHES_IN_FLIGHT_MAX)
    expect(t.pushes.every((p) => p.seqs.length === PUSH_BATCH_ENTRIES_MAX)).toBe(true)
    // Acks free room: the rest goes out, still in order.
    for (let acked = 0; acked < t.pushes.length; acked++) {
      expect(t.drain.take(t.pushes[acked]!.batch)).toBeDefined()
      t.drain.drain(t.ws)
      await settle()
    }
    const seqs = t.pushes.flatMap((p) => p.seqs)
    expect(seqs).toEqual(Array.from({ length: total }, (_, i) => i + 1))
    expect(t.drain.take(999)).toBeUndefined()
  })

  it('reads once for kicks within DRAIN_DELAY_MS, and not at all after an ack of a short batch', async () => {
    const t = await setup(3)
    t.drain.drain(t.ws)
    await settle()
    expect(t.pushes.map((p) => p.seqs)).toEqual([[1, 2, 3]])
    const readsAfterFirst = t.reads()
    // The ack of a short batch: everything committed was read, so the drain reads nothing.
    t.drain.take(t.pushes[0]!.batch)
    t.drain.drain(t.ws)
    await settle()
    expect(t.reads()).toBe(readsAfterFirst)
    // Three appends back to back, each kicking: one read, one batch, after DRAIN_DELAY_MS.
    for (let i = 0; i < 3; i++) {
      await fill(t.store, 1)
      t.drain.kick()
    }
    expect(t.drain.busy()).toBe(true)
    await t.scheduler.advance(DRAIN_DELAY_MS - 1)
    expect(t.pushes.length).toBe(1)
    await t.scheduler.advance(1)
    expect(t.pushes.map((p) => p.seqs)).toEqual([
      [1, 2, 3],
      [4, 5, 6],
    ])
    expect(t.reads()).toBe(readsAfterFirst + 1)
  })

  it('sends the whole outbox again after a reset or a resend, and nothing to a stale socket', async () => {
    const t = await setup(4)
    t.drain.drain(t.ws)
    await settle()
    t.drain.reset() // a new socket: nothing in flight, from the start again
    expect(t.drain.inFlight()).toBe(0)
    t.drain.drain(t.ws)
    await settle()
    expect(t.pushes.map((p) => p.seqs)).toEqual([
      [1, 2, 3, 4],
      [1, 2, 3, 4],
    ])
    t.drain.resend()
    t.drain.take(t.pushes[1]!.batch)
    t.drain.drain(t.ws)
    await settle()
    expect(t.pushes.length).toBe(3)
    t.setCurrent({} as WebSocketLike)
    t.drain.resend()
    t.drain.drain(t.ws) // the old socket: not current any more
    await settle()
    expect(t.pushes.length).toBe(3)
    t.drain.stop()
    t.drain.kick()
    expect(t.scheduler.pending()).toBe(0)
  })
})
