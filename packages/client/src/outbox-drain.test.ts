// Goal: the outbox drain's promises: batches in clientSeq order within the limits the relay
// advertises and our own, one read for many kicks within DRAIN_DELAY_MS, no read after an ack
// of a short batch, the whole outbox again after a reset, acks taken in parts, nothing above
// the high-water mark before what is at or below it was answered (issue 12 case 2), deferred
// entries held while later ones go on and sent again after `retryAfterMs` and on reconnect
// (issue 12 case 7), a repeated gap backing off (issue 12 case 4), a repeated failure halving the
// batch down to one entry that is then held, never dropped (issue 13 case 2), and nothing to a
// socket that is no longer current.
// Method: an in-memory client store holding the outbox, a socket stand-in, a manual scheduler.
import { describe, expect, it } from 'vitest'
import type { AckResult, Message } from '@ledgerline/protocol'
import { ENTRY_DATA_BYTES_MAX, FRAME_BYTES_MAX } from '@ledgerline/protocol'
import { CLIENT, entry, NOW } from '../test-support/entries.ts'
import { createManualScheduler, settle } from '../test-support/manual-scheduler.ts'
import type { ClientStore, OutboxRecord } from './client-store.ts'
import {
  DRAIN_DELAY_MS,
  FAILED_ENTRY_RETRY_MS,
  PUSH_BATCH_ENTRIES_MAX,
  PUSH_BATCHES_IN_FLIGHT_MAX,
  RECONNECT_MS_MIN,
  STORED_RESEND_MS,
} from './limits.ts'
import { createMemoryClientStore } from './memory-client-store.ts'
import { createOutboxDrain } from './outbox-drain.ts'
import type { WebSocketLike } from './transport.ts'

/** What a relay at the protocol's limits advertises. */
const WIDE = {
  pushEntriesMax: 500,
  pushBytesMax: FRAME_BYTES_MAX,
  entryDataBytesMax: ENTRY_DATA_BYTES_MAX,
  pushInFlightMax: 4,
}

async function setup(count: number, options: { bytes?: number } = {}) {
  const store = createMemoryClientStore()
  await store.init(() => CLIENT, NOW)
  await fill(store, count, options.bytes)
  let reads = 0
  const counted: ClientStore = {
    ...store,
    readOutbox: (...args) => (reads++, store.readOutbox(...args)),
  }
  const scheduler = createManualScheduler(NOW)
  const ws = {} as WebSocketLike
  let current: WebSocketLike | undefined = ws
  const pushes: { batch: number; seqs: number[]; records: OutboxRecord[] }[] = []
  const confirmed: WebSocketLike[] = []
  const drain = createOutboxDrain({
    clientStore: counted,
    scheduler,
    now: scheduler.now,
    isCurrent: (s) => s === current,
    ready: () => current,
    send: (_s, m: Message) => {
      if (m.type === 'push') {
        pushes.push({ batch: m.batch, seqs: m.entries.map((e) => e.clientSeq), records: [] })
      }
      return true
    },
    changed: () => {},
    confirmed: (s) => confirmed.push(s),
    failed: (message) => {
      throw new Error(message)
    },
  })
  /** Answers push `i` in one part, each entry with `answer` (appended by default). */
  const ack = (
    i: number,
    answer: (seq: number) => AckResult['status'] | AckResult = () => 'appended',
  ) => {
    const push = pushes[i] as (typeof pushes)[number]
    const records = drain.take(push.batch, 0, push.seqs.length, true)
    if (records === undefined) return undefined
    const items = records.map((record) => ({
      record,
      result: result(record, answer(record.clientSeq)),
    }))
    return drain.applied(items)
  }
  /** A welcomed socket with nothing to confirm: drain as usual, and let the reads run. */
  const open = async (limits = WIDE) => {
    drain.begin(ws, limits, 0)
    drain.lift()
    drain.drain(ws)
    await settle()
  }
  return {
    store,
    drain,
    scheduler,
    ws,
    pushes,
    confirmed,
    ack,
    open,
    reads: () => reads,
    setCurrent: (s: WebSocketLike | undefined) => (current = s),
  }
}

function result(record: OutboxRecord, answer: AckResult['status'] | AckResult): AckResult {
  if (typeof answer === 'object') return answer
  switch (answer) {
    case 'appended':
    case 'duplicate':
      return {
        id: record.id,
        status: answer,
        version: record.clientSeq,
        partition: 0,
        offset: record.clientSeq,
        committedAt: NOW,
        corrections: [],
      }
    case 'refused':
      return { id: record.id, status: 'refused', code: 'seq_gap', reason: 'gap', head: 0 }
    case 'id_conflict':
      return { id: record.id, status: 'id_conflict', reason: 'another entry' }
    case 'deferred':
      return {
        id: record.id,
        status: 'deferred',
        code: 'unknown_type',
        reason: 'not yet',
        retryAfterMs: 5_000,
      }
    case 'stored':
      return { id: record.id, status: 'stored' }
  }
}

async function fill(store: ClientStore, count: number, bytes = 100) {
  for (let done = 0; done < count; done += 500) {
    const n = Math.min(500, count - done)
    await store.append(
      (c, f) => Array.from({ length: n }, (_, i) => entry(c, f + i)),
      { entriesMax: 1e6, bytesMax: 1e12 },
      NOW,
      () => bytes,
    )
  }
}

describe('outbox drain', () => {
  it('pushes in clientSeq order, in bounded batches, never more in flight than allowed', async () => {
    const total = PUSH_BATCH_ENTRIES_MAX * (PUSH_BATCHES_IN_FLIGHT_MAX + 2) + 7
    const t = await setup(total)
    t.drain.begin(t.ws, WIDE, 0)
    t.drain.drain(t.ws)
    await settle()
    t.drain.lift()
    t.drain.drain(t.ws)
    await settle()
    expect(t.pushes.length).toBe(PUSH_BATCHES_IN_FLIGHT_MAX)
    expect(t.drain.inFlight()).toBe(PUSH_BATCHES_IN_FLIGHT_MAX)
    expect(t.pushes.every((p) => p.seqs.length === PUSH_BATCH_ENTRIES_MAX)).toBe(true)
    // Acks free room: the rest goes out, still in order.
    for (let acked = 0; acked < t.pushes.length; acked++) {
      expect(t.ack(acked)).toBeDefined()
      t.drain.drain(t.ws)
      await settle()
    }
    const seqs = t.pushes.flatMap((p) => p.seqs)
    expect(seqs).toEqual(Array.from({ length: total }, (_, i) => i + 1))
    expect(t.drain.take(999, 0, 1, true)).toBeUndefined()
  })

  it('sizes batches and flights from the relay’s limits, never above its own', async () => {
    // Issue 13 case 9: a relay that takes 10 entries per push and 1 push in flight.
    const t = await setup(25)
    await t.open({ ...WIDE, pushEntriesMax: 10, pushInFlightMax: 1 })
    expect(t.pushes.map((p) => p.seqs.length)).toEqual([10])
    t.ack(0)
    t.drain.drain(t.ws)
    await settle()
    t.ack(1)
    t.drain.drain(t.ws)
    await settle()
    expect(t.pushes.map((p) => p.seqs.length)).toEqual([10, 10, 5])
    // And a relay that takes more than our own constants gets our own.
    const u = await setup(PUSH_BATCH_ENTRIES_MAX + 1)
    await u.open({ ...WIDE, pushEntriesMax: 500 })
    expect(u.pushes[0]?.seqs.length).toBe(PUSH_BATCH_ENTRIES_MAX)
  })

  it('reads once for kicks within DRAIN_DELAY_MS, and not at all after an ack of a short batch', async () => {
    const t = await setup(3)
    await t.open()
    expect(t.pushes.map((p) => p.seqs)).toEqual([[1, 2, 3]])
    const readsAfterFirst = t.reads()
    // The ack of a short batch: everything committed was read, so the drain reads nothing.
    t.ack(0)
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

  it('takes an ack in parts, and keeps the batch in flight until its last part', async () => {
    const t = await setup(5)
    await t.open()
    const batch = t.pushes[0]!.batch
    expect(t.drain.take(batch, 0, 2, false)?.map((r) => r.clientSeq)).toEqual([1, 2])
    expect(t.drain.inFlight()).toBe(1)
    expect(t.drain.take(batch, 2, 3, true)?.map((r) => r.clientSeq)).toEqual([3, 4, 5])
    expect(t.drain.inFlight()).toBe(0)
    expect(t.drain.take(batch, 0, 1, true)).toBeUndefined()
  })

  it('confirms what is at or below the high-water mark first, and sends nothing above it until lifted', async () => {
    // Issue 12 case 2: a restored database's 1, 2, 3 against a log that holds 1, 2 of another
    // sale: 3 must not land before 1 and 2 are known to conflict.
    const t = await setup(3)
    t.drain.begin(t.ws, WIDE, 2)
    t.drain.drain(t.ws)
    await settle()
    expect(t.pushes.map((p) => p.seqs)).toEqual([[1, 2]])
    expect(t.drain.confirming()).toBe(true)
    t.ack(0, () => 'id_conflict')
    await settle()
    expect(t.confirmed).toEqual([t.ws])
    expect(t.drain.confirming()).toBe(false)
    // Settling: nothing goes out, not even a kick, until lifted (or a new socket).
    t.drain.kick()
    await t.scheduler.advance(DRAIN_DELAY_MS)
    expect(t.pushes.length).toBe(1)
    t.drain.lift()
    t.drain.drain(t.ws)
    await settle()
    expect(t.pushes.map((p) => p.seqs)).toEqual([[1, 2], [3]])
    // A high-water mark of 0 confirms at once, without a push.
    const u = await setup(2)
    u.drain.begin(u.ws, WIDE, 0)
    u.drain.drain(u.ws)
    await settle()
    expect(u.confirmed).toEqual([u.ws])
    expect(u.pushes).toEqual([])
  })

  it('holds a deferred entry while later ones go on, and sends it again after retryAfterMs and on reconnect', async () => {
    const t = await setup(3)
    await t.open()
    t.ack(0, (seq) => (seq === 1 ? 'deferred' : 'appended'))
    expect(t.drain.held()).toEqual([{ code: 'unknown_type', count: 1 }])
    await fill(t.store, 1)
    t.drain.kick()
    await t.scheduler.advance(DRAIN_DELAY_MS)
    // The appended ones are gone from the store in real life; here only 4 is new after them.
    expect(t.pushes.at(-1)?.seqs).toEqual([4])
    t.ack(1)
    await t.scheduler.advance(5_000)
    // Due: the outbox is read from its start again; only the held entry (and what is still in
    // the outbox, never in flight twice) goes.
    expect(t.pushes.at(-1)?.seqs[0]).toBe(1)
    t.ack(t.pushes.length - 1, (seq) => (seq === 1 ? 'deferred' : 'duplicate'))
    expect(t.drain.held()).toEqual([{ code: 'unknown_type', count: 1 }])
    // A new socket sends it again at once, with the whole outbox.
    t.drain.reset()
    t.drain.begin(t.ws, WIDE, 4)
    t.drain.drain(t.ws)
    await settle()
    expect(t.pushes.at(-1)?.seqs[0]).toBe(1)
    t.ack(t.pushes.length - 1, () => 'appended')
    expect(t.drain.held()).toEqual([])
  })

  it('sends a stored entry again every STORED_RESEND_MS until head office answers, not as held', async () => {
    // Goal: invariant 8: a hub's `stored` keeps the record asking; a page settling it ends that.
    const t = await setup(2)
    await t.open()
    t.ack(0, (seq) => (seq === 1 ? 'stored' : 'appended'))
    expect(t.drain.held()).toEqual([])
    const before = t.pushes.length
    await t.scheduler.advance(STORED_RESEND_MS - 1)
    expect(t.pushes.length).toBe(before)
    await t.scheduler.advance(1)
    expect(t.pushes.at(-1)?.seqs[0]).toBe(1)
    t.ack(t.pushes.length - 1, (seq) => (seq === 1 ? 'stored' : 'duplicate'))
    await t.scheduler.advance(STORED_RESEND_MS)
    expect(t.pushes.at(-1)?.seqs[0]).toBe(1)
    // Its entry came back in a page: no more resends.
    t.ack(t.pushes.length - 1, (seq) => (seq === 1 ? 'stored' : 'duplicate'))
    t.drain.settled([`${CLIENT}-1`])
    const settledAt = t.pushes.length
    await t.scheduler.advance(3 * STORED_RESEND_MS)
    expect(t.pushes.length).toBe(settledAt)
  })

  it('lets a held entry that fell due wait for the acks of a full window, without spinning a timer', async () => {
    // Found by the product simulation (rollouts with log restores, seed 1): the retry timer of a
    // due held entry was armed again at 0 ms whenever the drain could not push (every batch in
    // flight, or a gap backing off), a hot loop until the window opened.
    const t = await setup(3)
    const narrow = { ...WIDE, pushEntriesMax: 1, pushInFlightMax: 1 }
    let spins = 0
    const setTimeout = t.scheduler.setTimeout
    t.scheduler.setTimeout = (fn, ms) => {
      if (ms > 0) return setTimeout(fn, ms)
      // Bounded: a spinning timer is counted, and stops being armed after a few.
      return ++spins > 20 ? -1 : setTimeout(fn, ms)
    }
    await t.open(narrow)
    t.ack(0, () => 'deferred')
    t.drain.drain(t.ws)
    await settle()
    expect(t.pushes.map((p) => p.seqs)).toEqual([[1], [2]])
    // 1 falls due while 2 fills the window.
    await t.scheduler.advance(5_000)
    expect(spins).toBe(0)
    expect(t.pushes.length).toBe(2)
    // The ack opens the window: the read from the start sends the held entry.
    t.ack(1)
    t.drain.drain(t.ws)
    await settle()
    expect(t.pushes.at(-1)?.seqs).toEqual([1])
  })

  it('sends again after a gap at once, then backs off while the gap stays at the same entry', async () => {
    // Issue 12 case 4: a log restored without its generation raised refuses 7 forever.
    const t = await setup(2)
    await t.open()
    expect(t.ack(0, () => 'refused')).toEqual({ gapRepeated: false })
    t.drain.drain(t.ws)
    await settle()
    expect(t.pushes.length).toBe(2) // at once
    expect(t.ack(1, () => 'refused')).toEqual({ gapRepeated: true })
    t.drain.drain(t.ws)
    await settle()
    expect(t.pushes.length).toBe(2) // backing off
    await t.scheduler.advance(RECONNECT_MS_MIN - 1)
    expect(t.pushes.length).toBe(2)
    await t.scheduler.advance(1)
    expect(t.pushes.length).toBe(3)
    expect(t.ack(2, () => 'refused')).toEqual({ gapRepeated: true })
    await t.scheduler.advance(2 * RECONNECT_MS_MIN - 1)
    expect(t.pushes.length).toBe(3)
    await t.scheduler.advance(1)
    expect(t.pushes.length).toBe(4)
    // Progress ends the streak.
    expect(t.ack(3)).toEqual({ gapRepeated: undefined })
  })

  it('halves the batch after a repeated failure on the same first entry, and holds one that fails alone', async () => {
    // Issue 13 case 2: a relay that cannot answer a batch closes with internal; resending the
    // same batch forever must not happen, and no entry is ever dropped.
    const t = await setup(4)
    /** A new socket: the pushes it makes at once. */
    const round = async () => {
      const from = t.pushes.length
      t.drain.reset()
      await t.open()
      return t.pushes.slice(from).map((p) => p.seqs)
    }
    expect(await round()).toEqual([[1, 2, 3, 4]])
    t.drain.pushFailed('internal')
    expect(await round()).toEqual([[1, 2, 3, 4]]) // once may be bad luck
    t.drain.pushFailed('internal')
    expect(await round()).toEqual([
      [1, 2],
      [3, 4],
    ])
    t.drain.pushFailed('too_large')
    expect(await round()).toEqual([[1], [2], [3], [4]])
    t.drain.pushFailed('too_large')
    // Held, not dropped: the entries after it go on; it is tried again much later.
    expect(await round()).toEqual([[2], [3], [4]])
    expect(t.drain.held()).toEqual([{ code: 'too_large', count: 1 }])
    for (let i = t.pushes.length - 3; i < t.pushes.length; i++) t.ack(i)
    await fill(t.store, 2)
    t.drain.kick()
    await t.scheduler.advance(DRAIN_DELAY_MS)
    expect(t.pushes.at(-1)?.seqs).toEqual([5, 6]) // the cap grew back
    t.ack(t.pushes.length - 1)
    await t.scheduler.advance(FAILED_ENTRY_RETRY_MS)
    expect(t.pushes.at(-1)?.seqs[0]).toBe(1)
    expect((await t.store.counters()).outboxEntries).toBe(6)
  })

  it('holds an entry larger than the relay takes instead of sending it', async () => {
    const t = await setup(2, { bytes: 3_000 })
    await t.open({ ...WIDE, entryDataBytesMax: 10 })
    expect(t.pushes).toEqual([])
    expect(t.drain.held()).toEqual([{ code: 'too_large', count: 2 }])
  })

  it('sends the whole outbox again after a reset, and nothing to a stale socket', async () => {
    const t = await setup(4)
    await t.open()
    t.drain.reset() // a new socket: nothing in flight, from the start again
    expect(t.drain.inFlight()).toBe(0)
    await t.open()
    expect(t.pushes.map((p) => p.seqs)).toEqual([
      [1, 2, 3, 4],
      [1, 2, 3, 4],
    ])
    t.setCurrent({} as WebSocketLike)
    t.drain.drain(t.ws) // the old socket: not current any more
    await settle()
    expect(t.pushes.length).toBe(2)
    t.drain.stop()
    t.drain.kick()
    expect(t.scheduler.pending()).toBe(0)
  })
})
