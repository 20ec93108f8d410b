// Goal: `query` reads the kept views through the schema's indexes, refuses bad input with a
// typed ClientError before reading anything, and `subscribeQuery` is live: it calls back with
// the new result after an own append and after a confirmed entry from another device.
// Method: clients on fake-indexeddb with a schema whose `order` type declares indexes; two of
// them against a real in-process relay (its own schema has no indexes: they are the client's).
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { defineEntity, defineSchema } from '@ledgerline/core'
import { IDBFactory } from 'fake-indexeddb'
import {
  card,
  eventually,
  makeClient,
  schema as plainSchema,
  stock,
} from '../test-support/setup.ts'
import { startRelay, type TestRelay } from '../test-support/relay.ts'
import type { Client, QueryResult } from './client-api.ts'
import { ClientError } from './errors.ts'
import { QUERY_ROWS_MAX } from './limits.ts'

type Order = { readonly lines: number; readonly day: string }
const order = defineEntity({
  type: 'order',
  initial: { lines: 0, day: '' } as Order,
  reduce: (s: Order, e) =>
    e.kind === 'order.line' ? { lines: s.lines + 1, day: (e.data.day as string) ?? s.day } : s,
  indexes: { byDay: (o: Order) => o.day || null, byLines: (o: Order) => o.lines },
})
const schema = defineSchema(stock, card, order)
const OFFLINE = 'ws://127.0.0.1:9/sync'
const TOKEN = 'x.eyJ0ZW5hbnQiOiJ0MSJ9.y' // payload {"tenant":"t1"}

let server: TestRelay | undefined
const clients: Client[] = []
beforeAll(async () => {
  server = await startRelay()
})
afterAll(async () => {
  await server?.close()
})
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close()
})

function client(url = OFFLINE, token: string = TOKEN): Client<typeof schema> {
  const c = makeClient({ url, token, schema })
  clients.push(c)
  return c as Client<typeof schema>
}

describe('query', () => {
  it('finds own pending orders by day, ordered, limited, within a pattern', async () => {
    const c = client()
    await c.append('order/s1-1', 'order.line', { day: '2026-12-01' })
    await c.append('order/s1-2', 'order.line', { day: '2026-12-02' })
    await c.append('order/s2-3', 'order.line', { day: '2026-12-01' })
    await c.append('order/s2-3', 'order.line', {})
    const today = await c.query<Order>('order/*', { where: { byDay: '2026-12-01' } })
    expect(today.rows.map((r) => [r.entity, r.view.lines, r.version])).toEqual([
      ['order/s1-1', 1, 0],
      ['order/s2-3', 2, 0],
    ])
    expect(today.more).toBe(false)
    const mine = await c.query('order/s1-*', { where: { byDay: { gte: '2026-12-01' } } })
    expect(mine.rows.map((r) => r.entity)).toEqual(['order/s1-1', 'order/s1-2'])
    const top = await c.query('order/*', {
      orderBy: { index: 'byLines', direction: 'desc' },
      limit: 1,
    })
    expect(top).toMatchObject({ rows: [{ entity: 'order/s2-3' }], more: true })
    expect((await c.query('order/*')).rows.length).toBe(3)
  })

  it('refuses bad input with a typed ClientError', async () => {
    const c = client()
    const kindOf = async (p: Promise<unknown>) =>
      p.then(
        () => 'resolved',
        (e: unknown) => (e instanceof ClientError ? e.kind : 'other'),
      )
    expect(await kindOf(c.query('nope/*'))).toBe('unknown_type')
    expect(await kindOf(c.query('*'))).toBe('invalid')
    expect(await kindOf(c.query('stock/*'))).toBe('invalid') // declares no indexes
    expect(await kindOf(c.query('order/*', { where: { byMonth: 'x' } }))).toBe('invalid')
    expect(await kindOf(c.query('order/*', { where: { byDay: 'a', byLines: 1 } }))).toBe('invalid')
    expect(await kindOf(c.query('order/*', { where: { byDay: 'a' }, orderBy: 'byLines' }))).toBe(
      'invalid',
    )
    expect(await kindOf(c.query('order/*', { where: { byLines: { lt: Number.NaN } } }))).toBe(
      'invalid',
    )
    expect(await kindOf(c.query('order/*', { limit: QUERY_ROWS_MAX + 1 }))).toBe('invalid')
    expect(() => c.subscribeQuery('order/*', { limit: 0 }, () => {})).toThrow(ClientError)
  })

  it('subscribeQuery calls back after an own append and after another device’s entry', async () => {
    const relay = server as TestRelay
    const token = await relay.token()
    const a = client(relay.relay.url, token)
    const b = client(relay.relay.url, token)
    const seen: QueryResult<Order>[] = []
    const stop = a.subscribeQuery<Order>('order/*', { where: { byDay: '2026-12-03' } }, (r) =>
      seen.push(r),
    )
    await eventually(() => seen.length === 1, 10_000, 'the first result')
    expect(seen[0]?.rows).toEqual([])
    await a.append('order/a-1', 'order.line', { day: '2026-12-03' })
    // The append may call back more than once (pending, then acked) before the next poll.
    const hasA = (r: QueryResult<Order>) => r.rows.some((row) => row.entity === 'order/a-1')
    await eventually(() => seen.some(hasA), 10_000, 'the result after the append')
    expect(seen.find(hasA)?.rows.map((r) => r.entity)).toEqual(['order/a-1'])
    await b.append('order/b-1', 'order.line', { day: '2026-12-03' })
    await eventually(
      () => seen.at(-1)?.rows.some((r) => r.entity === 'order/b-1' && r.version === 1) === true,
      20_000,
      'the entry of the other device, confirmed',
    )
    expect(seen.at(-1)?.rows.map((r) => r.entity)).toEqual(['order/a-1', 'order/b-1'])
    stop()
  })

  it('builds the views of a type that gained indexes from the history stored before', async () => {
    // A database synced by a build without indexes (as one written by layout 2 is), then
    // opened by one with them: the first open folds the stored history into views.
    const relay = server as TestRelay
    const idb = new IDBFactory()
    const before = makeClient({ url: relay.relay.url, token: await relay.token(), idb })
    clients.push(before)
    await before.append('order/old-1', 'order.line', { day: '2026-11-30' })
    await before.append('order/old-1', 'order.line', {})
    expect(await before.synced({ timeoutMs: 20_000 })).toEqual({ _tag: 'synced' })
    expect(plainSchema.types.get('order')?.indexes).toBeUndefined()
    await before.close()
    const after = makeClient({ url: OFFLINE, token: TOKEN, idb, schema })
    clients.push(after)
    const found = await after.query<Order>('order/*', { where: { byDay: '2026-11-30' } })
    expect(found.rows).toEqual([
      { entity: 'order/old-1', view: { lines: 2, day: '2026-11-30' }, version: 2 },
    ])
  })
})
