// Goal: commit-queue.ts invariants — the bound and its reserve for small pushes of idle
// connections; each connection's pushes reach the log in order; an idle connection's push goes
// before a flood's backlog; the store never holds more than COMMIT_IN_STORE_ENTRIES_MAX at once;
// every admitted push is answered, also when the store fails it. Method: a fake store whose
// appends wait until the test lets them finish, recording what it was handed and when.
import { describe, expect, it } from 'vitest'
import type { AckResult } from '@ledgerline/protocol'
import { makeEntry } from './edges.test-helper.ts'
import { COMMIT_IN_STORE_ENTRIES_MAX, createCommitQueue } from './commit-queue.ts'
import type { AppendItem, AppendResult, LogStore } from './log-store.ts'

describe('the commit queue', () => {
  it('refuses past its bound; keeps a reserve for small pushes of idle connections', () => {
    const { store } = fakeStore()
    const queue = createCommitQueue(store, { commitQueueEntriesMax: 1_000 })
    const flood = {}
    expect(queue.submit(flood, 'acme', items('f', 1, 600), true)).toBeDefined()
    expect(queue.submit(flood, 'acme', items('f', 601, 400), false)).toBeDefined()
    expect(queue.submit(flood, 'acme', items('f', 1_001, 1), false)).toBeUndefined()
    // Reserve: a tenth of the bound, pushes of at most a hundredth of it (1 entry here).
    const till = {}
    expect(queue.submit(till, 'acme', items('t', 1, 2), true)).toBeUndefined()
    expect(queue.submit(till, 'acme', items('t', 1, 1), true)).toBeDefined()
    expect(queue.queuedEntries()).toBe(1_001)
    expect(queue.wouldAdmit(1, true)).toBe(true)
    expect(queue.wouldAdmit(1, false)).toBe(false)
  })

  it('admits a push bigger than the bound when nothing else waits', () => {
    const { store } = fakeStore()
    const queue = createCommitQueue(store, { commitQueueEntriesMax: 10 })
    expect(queue.submit({}, 'acme', items('f', 1, 50), true)).toBeDefined()
    expect(queue.submit({}, 'acme', items('g', 1, 1), true)).toBeUndefined()
  })

  it("sends an idle connection's push before a flood's backlog, each connection in order", async () => {
    const { store, handed, finishAll } = fakeStore()
    const queue = createCommitQueue(store, { commitQueueEntriesMax: 100_000 })
    const flood = {}
    const answers: Promise<AppendResult[]>[] = []
    for (let b = 0; b < 40; b++) {
      answers.push(queue.submit(flood, 'acme', items('f', b * 500 + 1, 500), b === 0) ?? fail())
    }
    // The store holds at most COMMIT_IN_STORE_ENTRIES_MAX; the rest waits in the queue.
    await new Promise((resolve) => setImmediate(resolve))
    expect(entriesOf(handed)).toBe(COMMIT_IN_STORE_ENTRIES_MAX)
    const bystander = queue.submit({}, 'acme', items('b', 1, 1), true) ?? fail()
    await finishAll()
    const order = handed.map((call) => call[0]?.entry.id ?? '')
    // It went right after what the store already held, not after the 32 pushes waiting.
    expect(order.indexOf(`${'b'.repeat(32)}-1`)).toBe(COMMIT_IN_STORE_ENTRIES_MAX / 500)
    const floodSeqs = handed
      .filter((call) => call[0]?.entry.clientId === 'f'.repeat(32))
      .map((call) => call[0]?.entry.clientSeq)
    expect(floodSeqs).toEqual([...floodSeqs].sort((a, b) => (a ?? 0) - (b ?? 0)))
    expect((await bystander).map((r) => r.status)).toEqual(['appended'])
    expect((await Promise.all(answers)).flat()).toHaveLength(40 * 500)
  })

  it('answers every push, also one the store fails, and frees its room', async () => {
    const { store, finishAll } = fakeStore({ failing: true })
    const queue = createCommitQueue(store, { commitQueueEntriesMax: 10 })
    const answer = queue.submit({}, 'acme', items('f', 1, 5), true) ?? fail()
    const outcome = answer.then(
      () => 'resolved',
      (error: unknown) => String(error),
    )
    await finishAll()
    expect(await outcome).toBe('Error: disk full')
    expect(queue.queuedEntries()).toBe(0)
  })
})

function fail(): never {
  throw new Error('refused')
}

function items(fill: string, from: number, count: number): AppendItem[] {
  const clientId = fill.repeat(32)
  return Array.from({ length: count }, (_, i) => ({
    entry: makeEntry(clientId, from + i, 'order/o1', 'order.line', {}),
  }))
}

function entriesOf(calls: readonly (readonly AppendItem[])[]): number {
  return calls.reduce((n, c) => n + c.length, 0)
}

/** A store whose appends wait for `finishAll`; `handed` is every call, in the order made. */
function fakeStore(options: { failing?: boolean } = {}) {
  const handed: (readonly AppendItem[])[] = []
  const waiting: (() => void)[] = []
  const store = {
    append(_tenant: string, calls: readonly AppendItem[]) {
      handed.push(calls)
      return new Promise<AckResult[]>((resolve, reject) => {
        waiting.push(() => {
          if (options.failing === true) reject(new Error('disk full'))
          else resolve(calls.map((c) => ({ id: c.entry.id, status: 'appended' }) as AckResult))
        })
      })
    },
  } as unknown as LogStore
  // Appends reach the store a microtask after they are picked: settle before every look.
  const finishAll = async () => {
    for (let round = 0; round < 1_000; round++) {
      await new Promise((resolve) => setImmediate(resolve))
      if (waiting.length === 0) return
      for (const finish of waiting.splice(0)) finish()
    }
  }
  return { store, handed, finishAll }
}
