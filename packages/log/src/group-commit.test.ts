// Goal: the one group-commit scheduler keeps its invariants whatever store it drives: groups
// bounded, each call answered with its own results, a failed group retried call by call, the
// global queue bound (overloaded at once, nothing kept), one client's calls never in two groups
// in flight, close() finishing what it accepted, and no timer but the injected `defer`.
// Method: a fake `commit` that records groups and answers each item with an id-only result,
// driven by a manual `defer` (a list of pending callbacks run by the test).
import { describe, expect, it } from 'vitest'
import type { Entry } from '@ledgerline/core'
import type { AckResult } from '@ledgerline/protocol'
import type { PlanCall } from './plan-types.ts'
import { createGroupCommit } from './group-commit.ts'
import type { CommitOutcome, GroupCommitOptions } from './group-commit.ts'

describe('createGroupCommit', () => {
  it('cuts the queue into bounded groups and answers each call with its own results', async () => {
    const h = harness({ groupEntriesMax: 5 })
    const calls = [h.call('a', 2), h.call('b', 2), h.call('c', 2), h.call('d', 1)]
    expect(h.groups).toHaveLength(0) // nothing before the deferred flush
    await h.drain()
    expect(h.groups.map((g) => g.map((c) => c.items.length))).toEqual([
      [2, 2],
      [2, 1],
    ])
    const results = await Promise.all(calls)
    expect(results.map((r) => r.map((x) => x.id))).toEqual([
      ['a-1', 'a-2'],
      ['b-1', 'b-2'],
      ['c-1', 'c-2'],
      ['d-1'],
    ])
    expect(h.committed).toEqual([[0], [0]])
  })

  it('retries a failed group call by call, so one bad call rejects alone', async () => {
    const h = harness({
      failIf: (group) => group.some((c) => c.items[0]?.entry.clientId === 'bad'),
    })
    const good = h.call('good', 1)
    const bad = h.call('bad', 1)
    const other = h.call('other', 1)
    const refused = bad.then(
      () => 'resolved',
      (error: unknown) => (error as Error).message,
    )
    await h.drain()
    expect(await refused).toBe('commit failed')
    expect((await good).map((r) => r.id)).toEqual(['good-1'])
    expect((await other).map((r) => r.id)).toEqual(['other-1'])
    expect(h.groups.map((g) => g.length)).toEqual([3, 1, 1, 1])
    expect(h.commits.queuedEntries).toBe(0)
  })

  it('rejects at once past the queue bound and keeps nothing of the refused call', async () => {
    const h = harness({ queueEntriesMax: 4 })
    const first = h.call('a', 3)
    await expect(h.call('b', 2)).rejects.toMatchObject({
      name: 'LogStoreError',
      kind: 'overloaded',
    })
    expect(h.commits.queuedEntries).toBe(3)
    const second = h.call('c', 1)
    await h.drain()
    expect((await first).length + (await second).length).toBe(4)
    expect(h.groups.flat().map((c) => c.items[0]?.entry.clientId)).toEqual(['a', 'c'])
    expect(h.commits.queuedEntries).toBe(0)
    const again = h.call('b', 2) // once drained, the same call is taken
    await h.drain()
    expect((await again).length).toBe(2)
  })

  it('with several groups in flight, never holds two calls of one client at once', async () => {
    // Commits wait for the test to release them, so groups overlap.
    const h = harness({ groupsInFlightMax: () => 2, groupEntriesMax: 1, manualCommit: true })
    const calls = [h.call('x', 1), h.call('x', 1), h.call('y', 1), h.call('x', 1)]
    await h.flushOnce()
    // Two slots: x's first call and y's; x's second waits for its first, x's third behind it.
    expect(h.inFlight().map((g) => g.map((c) => c.items[0]?.entry.clientId))).toEqual([
      ['x'],
      ['y'],
    ])
    h.release(0)
    await h.drain()
    await Promise.all(calls)
    const order = h.groups
      .flat()
      .map((c) => `${c.items[0]?.entry.clientId}${c.items[0]?.entry.clientSeq}`)
    expect(order.filter((s) => s.startsWith('x'))).toEqual(['x1', 'x2', 'x3'])
  })

  it('finishes every accepted call on close, then refuses new ones', async () => {
    const h = harness({})
    const pending = [h.call('a', 2), h.call('b', 1)]
    const closed = h.commits.close()
    await expect(h.call('c', 1)).rejects.toMatchObject({ kind: 'closed' })
    await h.drain()
    await closed
    expect((await Promise.all(pending)).flat()).toHaveLength(3)
  })
})

// ---------------------------------------------------------------------------------------------

function harness(
  options: Partial<GroupCommitOptions> & {
    failIf?: (group: readonly PlanCall[]) => boolean
    manualCommit?: boolean
  },
) {
  const deferred: (() => void)[] = []
  const groups: PlanCall[][] = []
  const committed: number[][] = []
  const waiting: { group: PlanCall[]; go: () => void }[] = []
  const seqs = new Map<string, number>()
  const answer = (group: readonly PlanCall[]): CommitOutcome => ({
    results: group.map((c) => c.items.map((i) => ack(i.entry.id))),
    touched: [0],
  })
  const commits = createGroupCommit({
    ...options,
    defer: (fn) => deferred.push(fn),
    onCommitted: (touched) => committed.push([...touched]),
    commit: async (group) => {
      groups.push([...group])
      if (options.manualCommit === true) {
        await new Promise<void>((go) => waiting.push({ group: [...group], go }))
      }
      if (options.failIf?.(group) === true) throw new Error('commit failed')
      return answer(group)
    },
  })
  const settle = () => new Promise((resolve) => setTimeout(resolve, 0))
  return {
    commits,
    groups,
    committed,
    call(clientId: string, n: number) {
      const items = Array.from({ length: n }, () => {
        const seq = (seqs.get(clientId) ?? 0) + 1
        seqs.set(clientId, seq)
        return { entry: entry(clientId, seq) }
      })
      return commits.append('acme', items)
    },
    async flushOnce() {
      for (const fn of deferred.splice(0)) fn()
      await settle()
    },
    inFlight: () => waiting.map((w) => w.group),
    release(i: number) {
      const [w] = waiting.splice(i, 1)
      w?.go()
    },
    async drain() {
      for (let round = 0; round < 100; round++) {
        for (const w of waiting.splice(0)) w.go()
        for (const fn of deferred.splice(0)) fn()
        await settle()
        if (deferred.length === 0 && waiting.length === 0 && commits.queuedEntries === 0) return
      }
      throw new Error('did not drain')
    },
  }
}

function entry(clientId: string, clientSeq: number): Entry {
  return {
    id: `${clientId}-${clientSeq}`,
    tenant: 'acme',
    entity: 'stock/a',
    kind: 'stock.moved',
    data: {},
    intent: 'fact',
    clientId,
    clientSeq,
    hlc: '000000000000001:00000:x',
    occurredAt: 1,
  }
}

function ack(id: string): AckResult {
  return {
    id,
    status: 'appended',
    version: 1,
    partition: 0,
    offset: 1,
    committedAt: 1,
    corrections: [],
  }
}
