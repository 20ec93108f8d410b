// Goal: registers' pushes queue in group transactions (`hub-queue.ts` invariant 4): pushes
// that arrive together are queued in one transaction (one fsync, one `onQueued`), each answered
// with its own results, in arrival order; a group never passes `HUB_COMMIT_GROUP_ENTRIES_MAX`
// entries; a push past the queue bound (`HUB_QUEUE_ENTRIES_MAX`, smaller in a test) is refused
// alone while the others queue; and what was answered `stored` is in the file after a reopen.
// A head office of another log (`hub-store.ts` invariant 4, finding D): settled rows and marks
// go, open rows stay.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { isLogStoreError } from '@ledgerline/log'
import { makeEntry, TENANT } from '../edges.test-helper.ts'
import { HUB_COMMIT_GROUP_ENTRIES_MAX, HUB_QUEUE_ENTRIES_MAX } from './hub-limits.ts'
import { HUB_FILE, openHubStore } from './hub-store.ts'
import type { HubStore } from './hub-store.ts'

const undo: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const u of undo.splice(0).reverse()) await u()
})

const grants = { read: ['*'], write: ['*'] }
const clientIdOf = (r: number): string => String(r).repeat(32)

/** A queue bound small enough to reach in a test (the store's default is the limit itself). */
const QUEUE_MAX = 500

function fresh(queueEntriesMax = QUEUE_MAX): { file: string; open: () => HubStore } {
  const dir = mkdtempSync(join(tmpdir(), 'll-hub-store-'))
  undo.push(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, HUB_FILE)
  return {
    file,
    open: () => {
      const store = openHubStore(file, { queueEntriesMax })
      undo.push(() => store.close())
      return store
    },
  }
}

/** `count` sales of register `r` from clientSeq `from`. */
const sales = (r: number, from: number, count: number) =>
  Array.from({ length: count }, (_, k) => ({
    entry: makeEntry(clientIdOf(r), from + k, `sale/${r}-${from + k}`, 'sold', { k }),
  }))

describe('the store queue', () => {
  it('queues pushes that arrive together in one transaction, each with its own results', async () => {
    const { open } = fresh()
    const store = open()
    const told: number[] = []
    store.onQueued((rows) => told.push(rows.length))
    const answers = await Promise.all(
      Array.from({ length: 8 }, (_, r) =>
        store.append(TENANT, sales(r + 1, 1, 10), { subject: `register-${r + 1}`, grants }),
      ),
    )
    expect(told).toEqual([80])
    for (const [r, results] of answers.entries()) {
      expect(results.map((x) => x.id)).toEqual(sales(r + 1, 1, 10).map((i) => i.entry.id))
      expect(results.every((x) => x.status === 'stored')).toBe(true)
    }
    // Arrival order is the store order.
    const order = store.open(100).map((q) => q.entry.clientId)
    expect(order.slice(0, 10).every((c) => c === clientIdOf(1))).toBe(true)
    expect(order.slice(70).every((c) => c === clientIdOf(8))).toBe(true)
  })

  it('cuts groups at HUB_COMMIT_GROUP_ENTRIES_MAX entries', async () => {
    const { open } = fresh(HUB_QUEUE_ENTRIES_MAX)
    const store = open()
    const told: number[] = []
    store.onQueued((rows) => told.push(rows.length))
    const push = 500
    const pushes = Math.ceil((HUB_COMMIT_GROUP_ENTRIES_MAX * 2) / push) + 1
    await Promise.all(
      Array.from({ length: pushes }, (_, i) =>
        store.append(TENANT, sales(1, 1 + i * push, push), { subject: 'register-1', grants }),
      ),
    )
    expect(told.length).toBeGreaterThanOrEqual(3)
    expect(Math.max(...told)).toBeLessThanOrEqual(HUB_COMMIT_GROUP_ENTRIES_MAX)
    expect(told.reduce((a, b) => a + b, 0)).toBe(pushes * push)
    // One register's pushes stay in clientSeq order across groups.
    const seqs = store.open(pushes * push).map((q) => q.entry.clientSeq)
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b))
  })

  it('refuses only the push that would pass the queue bound, and keeps what it stored', async () => {
    const { open } = fresh()
    let store = open()
    const fill = 100
    for (let from = 1; from <= QUEUE_MAX - fill; from += fill) {
      await store.append(TENANT, sales(9, from, fill), { subject: 'register-9', grants })
    }
    const [small, big] = await Promise.allSettled([
      store.append(TENANT, sales(1, 1, 10), { subject: 'register-1', grants }),
      store.append(TENANT, sales(2, 1, fill), { subject: 'register-2', grants }),
    ])
    expect(small.status).toBe('fulfilled')
    expect(big.status === 'rejected' && isLogStoreError(big.reason, 'overloaded')).toBe(true)
    expect(store.openCount()).toBe(QUEUE_MAX - fill + 10)
    await store.close()
    store = open()
    expect(store.openCount()).toBe(QUEUE_MAX - fill + 10)
  })

  it('opens with HUB_QUEUE_ENTRIES_MAX as its bound unless told otherwise', async () => {
    const { file } = fresh()
    const store = openHubStore(file)
    undo.push(() => store.close())
    // One push past the limit alone is refused with the limit's own number.
    const refused = await store
      .append(TENANT, sales(1, 1, HUB_QUEUE_ENTRIES_MAX + 1), { subject: 'register-1', grants })
      .then(
        () => undefined,
        (error: unknown) => error,
      )
    expect(isLogStoreError(refused, 'overloaded')).toBe(true)
    expect(String((refused as Error).message)).toContain(String(HUB_QUEUE_ENTRIES_MAX))
    expect(store.openCount()).toBe(0)
  })
})

describe('a head office of another log (invariant 4, finding D)', () => {
  const head = (generation: number) => ({
    log: { id: 'log-1', generation },
    partitions: 4,
    read: ['*'],
    subject: 'hub-1',
  })

  it('drops what it settled against the old log and forgets its marks, keeping open rows', async () => {
    const store = fresh().open()
    expect(store.welcomed(head(1))).toBe(false)
    const pusher = { subject: 'register-1', grants }
    const [s1, s2, s3] = sales(1, 1, 3)
    await store.append(TENANT, [s1!, s2!, s3!], pusher)
    // Head office appended the first two; the third is still open.
    store.settle([s1!, s2!].map((s, i) => appended(s.entry.id, i + 1)))
    expect(await store.append(TENANT, [s1!], pusher)).toMatchObject([{ status: 'duplicate' }])
    expect((await store.client(TENANT, clientIdOf(1))).high).toBe(3)

    expect(store.welcomed(head(2))).toBe(true)
    expect(store.open(10).map((q) => q.entry.id)).toEqual([s3!.entry.id])
    expect(await store.client(TENANT, clientIdOf(1))).toEqual({ high: 0, subject: 'register-1' })
    // A resend is queued again (the new log may lack it), not answered with a lost position.
    expect(await store.append(TENANT, [s1!], pusher)).toMatchObject([{ status: 'stored' }])
    expect(store.open(10).map((q) => q.entry.id)).toEqual([s3!.entry.id, s1!.entry.id])
    // The same log again (a reconnect) changes nothing.
    expect(store.welcomed(head(2))).toBe(false)
    expect(store.openCount()).toBe(2)
  })

  // Failed on 2bebcbe: the open row stayed open (head office answers the original `seq_gap`
  // for good: the restored log lacks the clientSeqs before it), so the hub never drained.
  it('settles an open row once its moved copy is in the mirror, as head office would', async () => {
    const store = fresh().open()
    store.welcomed(head(1))
    const pusher = { subject: 'register-1', grants }
    const [s1, s2, s3] = sales(1, 1, 3)
    await store.append(TENANT, [s1!, s2!, s3!], pusher)
    store.settle([s1!].map((s, i) => appended(s.entry.id, i + 1)))
    expect(store.welcomed(head(2))).toBe(true)
    // The register's log-change recovery moved s2 and s3 to a new clientId; head office took
    // the copies. Another copy of s3 with other content settles nothing.
    const moved = clientIdOf(9)
    const copy = (s: typeof s1, seq: number, data = s!.entry.data) => ({
      ...s!.entry,
      id: `${moved}-${seq}`,
      clientId: moved,
      clientSeq: seq,
      data,
      origin: s!.entry.id,
    })
    const settled: string[] = []
    store.onSettled((ids) => settled.push(...ids))
    store.mirrorPage(
      [{ ...copy(s3, 7, { other: true }), version: 1, partition: 0, offset: 3, committedAt: 5 }],
      { 0: 3 },
    )
    expect(store.openCount()).toBe(2)
    store.mirrorPage(
      [
        { ...copy(s2, 1), version: 1, partition: 0, offset: 4, committedAt: 6 },
        { ...copy(s3, 2), version: 1, partition: 0, offset: 5, committedAt: 6 },
      ],
      { 0: 5 },
    )
    expect(store.openCount()).toBe(0)
    expect(settled).toEqual([s2!.entry.id, s3!.entry.id])
    // A resend of the original is answered as head office answers it: a duplicate of the copy.
    expect(await store.append(TENANT, [s3!], pusher)).toMatchObject([
      { id: s3!.entry.id, status: 'duplicate', partition: 0, offset: 5, version: 1 },
    ])
  })

  // Failed on a73f38a (seed 179 with hubs): with no log change a device restore's recovery moved
  // s1 and s2 to a new clientId, but the hub also held s3, which the restored device had lost.
  // Settling s1 and s2 here left head office's mark of the old clientId below s3, which it then
  // refused `seq_gap` for good, so the hub never drained. Head office answers the originals
  // `duplicate` itself (using up their clientSeqs): they stay open and are forwarded.
  it('leaves an open row of the same log to head office when its moved copy lands', async () => {
    const store = fresh().open()
    store.welcomed(head(1))
    const pusher = { subject: 'register-1', grants }
    const [s1, s2, s3] = sales(1, 1, 3)
    await store.append(TENANT, [s1!, s2!, s3!], pusher)
    const moved = clientIdOf(9)
    const copy = (s: typeof s1, seq: number, offset: number) => ({
      ...s!.entry,
      id: `${moved}-${seq}`,
      clientId: moved,
      clientSeq: seq,
      origin: s!.entry.id,
      version: seq,
      partition: 0,
      offset,
      committedAt: 5,
    })
    store.mirrorPage([copy(s1, 1, 1), copy(s2, 2, 2)], { 0: 2 })
    expect(store.open(10).map((q) => q.entry.id)).toEqual([s1, s2, s3].map((s) => s!.entry.id))
    // Head office answered the forwarded originals duplicate and appended s3.
    store.settle([
      { ...appended(s1!.entry.id, 1), status: 'duplicate' as const },
      { ...appended(s2!.entry.id, 2), status: 'duplicate' as const },
      appended(s3!.entry.id, 3),
    ])
    expect(store.openCount()).toBe(0)
  })

  // Failed on e78ebeb (seed 15 with hubs): the moved copy was refused at head office, so it
  // never reached the mirror, and the original stayed open (`seq_gap` for good).
  it('settles an open row with the decision its moved copy got through the hub', async () => {
    const store = fresh().open()
    store.welcomed(head(1))
    const pusher = { subject: 'register-1', grants }
    const [s1, s2, s3] = sales(1, 1, 3)
    await store.append(TENANT, [s1!, s2!, s3!], pusher)
    store.settle([appended(s1!.entry.id, 1)])
    expect(store.welcomed(head(2))).toBe(true)
    const moved = clientIdOf(8)
    const copy = (s: typeof s1, seq: number) => ({
      entry: {
        ...s!.entry,
        id: `${moved}-${seq}`,
        clientId: moved,
        clientSeq: seq,
        origin: s!.entry.id,
      },
    })
    const [c2, c3] = [copy(s2, 1), copy(s3, 2)]
    await store.append(TENANT, [c2, c3], pusher)
    expect(store.openCount()).toBe(4)
    // Another subject's copy of s2 (same content, its own clientId) settles nothing of
    // register-1's.
    const other = { ...copy(s2, 1).entry, id: `${clientIdOf(7)}-1`, clientId: clientIdOf(7) }
    await store.append(TENANT, [{ entry: other }], { subject: 'register-7', grants })
    const refusal = { status: 'refused' as const, code: 'invalid' as const, reason: 'no', head: 0 }
    store.settle([{ id: other.id, ...refusal }])
    expect(store.openCount()).toBe(4)
    // Head office refused the copy of s2 and appended the copy of s3 (forwarder results).
    store.settle([{ id: c2.entry.id, ...refusal }, appended(c3.entry.id, 9)])
    expect(store.openCount()).toBe(0)
    expect(await store.append(TENANT, [s2!, s3!], pusher)).toMatchObject([
      { id: s2!.entry.id, status: 'refused', code: 'invalid' },
      { id: s3!.entry.id, status: 'duplicate', offset: 9 },
    ])
  })
})

function appended(id: string, offset: number) {
  return {
    id,
    status: 'appended' as const,
    version: offset,
    partition: 0,
    offset,
    committedAt: 1,
    corrections: [],
  }
}
