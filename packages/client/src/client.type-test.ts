/**
 * Compile-time tests of the typed client: `npm run check` type-checks this file
 * (tsconfig.test.json) and fails on any `@ts-expect-error` line that compiles. Nothing runs.
 *
 * Goal: `createClient({ schema })` infers `Client<typeof schema>`, whose `append` and
 * `appendMany` are checked against the schema's typed kinds through core's `AppendOf` and
 * `DraftOf`: a wrong data shape, an unknown kind and an unknown entity type fail to compile;
 * an untyped type stays loose; a plain `Client` takes anything, as before.
 */
import * as v from 'valibot'
import { defineEntity, defineSchema } from '@ledgerline/core'
import type { Client } from './client-api.ts'
import { createClient } from './client.ts'

const stock = defineEntity({
  type: 'stock',
  initial: { onHand: 0 },
  kinds: { 'stock.moved': v.object({ qty: v.pipe(v.number(), v.integer()) }) },
  reduce: (s, e) => (e.kind === 'stock.moved' ? { onHand: s.onHand + e.data.qty } : s),
  indexes: { onHand: (s) => s.onHand },
})
const note = defineEntity({ type: 'note', initial: '', reduce: (s, e) => s + String(e.data) })
const schema = defineSchema(stock)

export async function typedClient(): Promise<void> {
  const client = createClient({ url: 'wss://relay.example/sync', token: 't', schema, dbName: 'x' })
  const typed: Client<typeof schema> = client
  const asPlain: Client = client // a typed client is still a Client
  void asPlain
  await typed.append('stock/s1:beans', 'stock.moved', { qty: -1 }, { intent: 'fact' })
  // @ts-expect-error: qty must be a number
  await client.append('stock/s1:beans', 'stock.moved', { qty: '5' })
  // @ts-expect-error: a kind stock does not declare
  await client.append('stock/s1:beans', 'stock.movd', { qty: 1 })
  // @ts-expect-error: an entity type the schema does not have
  await client.append('stok/s1:beans', 'stock.moved', { qty: 1 })
  await client.appendMany([{ entity: 'stock/a', kind: 'stock.moved', data: { qty: 2 } }])
  // @ts-expect-error: a draft's data is checked against its kind
  await client.appendMany([{ entity: 'stock/a', kind: 'stock.moved', data: { qty: 'two' } }])
  // Queries stay typed by the caller: the view type is the one asked for.
  const { rows } = await client.query<{ onHand: number }>('stock/*', { orderBy: 'onHand' })
  const first: number | undefined = rows[0]?.view.onHand
  void first
  // @ts-expect-error: an index key is a string or a number
  await client.query('stock/*', { where: { onHand: { lt: true } } })
}

export async function untypedClients(loose: Client): Promise<void> {
  const mixed = createClient({
    url: 'wss://relay.example/sync',
    token: 't',
    schema: defineSchema(stock, note),
    dbName: 'x',
  })
  await mixed.append('note/a', 'note.anything', 'text')
  // @ts-expect-error: the typed type stays typed beside an untyped one
  await mixed.append('stock/a', 'stock.moved', { qty: 'one' })
  await loose.append('whatever/a', 'any.kind', { any: ['data'] })
  // A typed client is still a Client (what the React hooks and app wrappers take).
  const plain: Client = mixed
  void plain
}
