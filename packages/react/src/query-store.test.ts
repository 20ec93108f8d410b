// Goal: `createQueryStore` (under `useQuery`) subscribes to the client's live query once,
// hands React each result the client reports (the same object until the next one), and lets go
// of the client when the last subscriber leaves.
// Method: a fake client whose `subscribeQuery` the test drives.
import { describe, expect, it } from 'vitest'
import type { ClientLike, QueryResultLike } from './client-like.ts'
import { createQueryStore } from './external-stores.ts'

describe('createQueryStore', () => {
  it('gives undefined, then each reported result, and unsubscribes after the last listener', () => {
    const calls: { pattern: string; options: unknown; onResult: (r: QueryResultLike) => void }[] =
      []
    let stopped = 0
    const client = {
      subscribeQuery(pattern: string, options: unknown, onResult: (r: QueryResultLike) => void) {
        calls.push({ pattern, options, onResult })
        return () => void stopped++
      },
    } as unknown as ClientLike
    const options = { where: { byDay: '2026-12-01' } }
    const store = createQueryStore<{ total: number }>(client, 'order/*', options)
    expect(store.getSnapshot()).toBeUndefined()
    let notified = 0
    const stopA = store.subscribe(() => notified++)
    const stopB = store.subscribe(() => notified++)
    expect(calls.map((c) => [c.pattern, c.options])).toEqual([['order/*', options]])
    const result = { rows: [{ entity: 'order/1', view: { total: 5 }, version: 1 }], more: false }
    calls[0]?.onResult(result)
    expect(notified).toBe(2)
    expect(store.getSnapshot()).toBe(result)
    expect(store.getSnapshot()).toBe(store.getSnapshot())
    stopA()
    expect(stopped).toBe(0)
    stopB()
    expect(stopped).toBe(1)
  })
})
