// Goal: the endpoint writes like a client (`yjs-log-writer.ts` invariants 1–4): gap-free
// clientSeqs per tenant from the log's high-water mark, an update over one entry appended as its
// parts in one call, and an update the log does not append rejects without stopping the next.
// Method: a memory log store, real Yjs updates; one big update of incompressible text.
import { describe, expect, it } from 'vitest'
import { defineEntity, defineSchema } from '@ledgerline/core'
import { createMemoryLogStore } from '@ledgerline/log'
import * as Y from 'yjs'
import { createYjsLogWriter } from './yjs-log-writer.ts'

const update = (text: string): Uint8Array => {
  const doc = new Y.Doc()
  doc.getText('t').insert(0, text)
  return Y.encodeStateAsUpdate(doc)
}

describe('createYjsLogWriter', () => {
  it('uses gap-free clientSeqs per tenant, in call order', async () => {
    const store = createMemoryLogStore()
    const writer = createYjsLogWriter(store, Date.now)
    const one = update('one')
    const calls = [
      writer.append('acme', 'doc/a', one),
      writer.append('acme', 'doc/b', update('two')),
      writer.append('other', 'doc/a', update('three')),
      writer.append('acme', 'doc/a', update('four')),
    ]
    expect(await Promise.all(calls), 'entity versions of each update').toEqual([[1], [1], [1], [2]])
    await writer.settled()
    expect((await store.client('acme', writer.clientId)).high).toBe(3)
    expect((await store.client('other', writer.clientId)).high).toBe(1)
    const a = await store.readEntity('acme', 'doc/a', 1, 10)
    expect(a.map((e) => [e.clientSeq, e.kind, e.clientId])).toEqual([
      [1, 'yjs.update', writer.clientId],
      [3, 'yjs.update', writer.clientId],
    ])
    expect(a[0]?.data).toEqual(one)
  })

  it('appends an update over one entry as its parts in one call', async () => {
    const store = createMemoryLogStore()
    let calls = 0
    const counting = {
      ...store,
      append: (...args: Parameters<typeof store.append>) => {
        calls++
        return store.append(...args)
      },
    }
    const writer = createYjsLogWriter(counting, Date.now)
    // Text that does not compress: a linear congruential sequence of letters.
    let x = 1
    const text = Array.from({ length: 600_000 }, () => {
      x = (x * 48_271) % 2_147_483_647
      return String.fromCharCode(65 + (x % 26))
    }).join('')
    await writer.append('acme', 'doc/big', update(text))
    expect(calls).toBe(1)
    const parts = await store.readEntity('acme', 'doc/big', 1, 100)
    expect(parts.length).toBeGreaterThan(1)
    expect(parts.map((e) => e.clientSeq)).toEqual(parts.map((_, i) => i + 1))
  })

  it('rejects an update the log does not append and still appends the next one', async () => {
    // A log whose schema lacks `doc`: an update of `doc/a` is deferred (`unknown_type`).
    const schema = defineSchema(defineEntity({ type: 'note', initial: {}, reduce: (s) => s }))
    const store = createMemoryLogStore({ schema })
    const writer = createYjsLogWriter(store, Date.now)
    await expect(writer.append('acme', 'doc/a', update('x'))).rejects.toThrow(/not appended/)
    await writer.append('acme', 'note/a', update('y'))
    expect(await store.readEntity('acme', 'note/a', 1, 10)).toHaveLength(1)
    expect(await store.readEntity('acme', 'doc/a', 1, 10)).toHaveLength(0)
  })
})
