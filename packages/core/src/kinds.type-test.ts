/**
 * Compile-time tests of typed kinds: `npm run check` type-checks this file (tsconfig.test.json)
 * and fails on any `@ts-expect-error` line that compiles, so each one proves that a mistake
 * does not compile. Nothing here runs; the functions are only type-checked.
 *
 * Goal: a schema of typed entity types types `reduce`, `correct` and a typed `append`
 * (`AppendOf`): a wrong data shape and an unknown kind fail to compile, correct calls do,
 * and an untyped entity type stays as loose as before.
 */
import * as v from 'valibot'
import type {
  AppendOf,
  DataOf,
  DraftOf,
  Entry,
  EntityNameOf,
  EntityTypeFor,
  KindsOf,
} from '@ledgerline/core'
import { defineEntity, defineSchema } from '@ledgerline/core'

const stock = defineEntity({
  type: 'stock',
  initial: { onHand: 0 },
  kinds: {
    'stock.moved': v.object({ qty: v.pipe(v.number(), v.integer()) }),
    'stock.counted': v.object({ onHand: v.number(), by: v.string() }),
    'stock.oversold': v.object({ short: v.number(), sale: v.string() }),
  },
  reduce: (s, e) => {
    switch (e.kind) {
      case 'stock.moved':
        return { onHand: s.onHand + e.data.qty }
      case 'stock.counted':
        return { onHand: e.data.onHand }
      default:
        return s
    }
  },
  invariants: { nonNegative: (s) => s.onHand >= 0 || 'stock below zero' },
  correct: (s, _broken, e) => [{ kind: 'stock.oversold', data: { short: -s.onHand, sale: e.id } }],
})

const note = defineEntity({ type: 'note', initial: '', reduce: (s, e) => s + String(e.data) })
const schema = defineSchema(stock)
const mixed = defineSchema(stock, note)

declare const append: AppendOf<typeof schema, { intent?: 'fact' | 'request' }, Promise<Entry>>
declare const appendMixed: AppendOf<typeof mixed, undefined, Promise<Entry>>
declare function appendMany(drafts: readonly DraftOf<typeof schema>[]): Promise<Entry[]>

type Equal<A, B> =
  (<X>() => X extends A ? 1 : 2) extends <X>() => X extends B ? 1 : 2 ? true : false
function expectType<T extends true>(_proof: T): void {}

export async function typedAppend(): Promise<void> {
  await append('stock/s1:espresso', 'stock.moved', { qty: -1 })
  await append('stock/s1:espresso', 'stock.counted', { onHand: 4, by: 'ana' }, { intent: 'fact' })
  // @ts-expect-error: qty must be a number, not a string
  await append('stock/s1:espresso', 'stock.moved', { qty: '5' })
  // @ts-expect-error: a kind the type does not declare
  await append('stock/s1:espresso', 'stock.movd', { qty: 1 })
  // @ts-expect-error: a field missing from the data
  await append('stock/s1:espresso', 'stock.counted', { onHand: 4 })
  // @ts-expect-error: an entity type the schema does not have
  await append('stok/s1:espresso', 'stock.moved', { qty: 1 })
  await appendMany([{ entity: 'stock/a', kind: 'stock.moved', data: { qty: 2 } }])
  // @ts-expect-error: a draft's data is checked against its kind
  await appendMany([{ entity: 'stock/a', kind: 'stock.moved', data: { short: 2 } }])
}

export async function mixedAppend(entity: string): Promise<void> {
  // A typed type stays typed in a schema that also has untyped ones…
  await appendMixed('stock/a', 'stock.moved', { qty: 1 })
  // @ts-expect-error: …so its data is still checked
  await appendMixed('stock/a', 'stock.moved', { qty: 'one' })
  // …and the untyped one takes any kind and data, as before kinds existed.
  await appendMixed('note/a', 'note.anything', 'text')
  await appendMixed(entity, 'whatever.kind', { any: ['data'] })
}

export function typedReduce(): void {
  defineEntity({
    type: 'till',
    initial: { cash: 0 },
    kinds: { 'till.paid_in': v.object({ cents: v.number() }) },
    // @ts-expect-error: reduce reads a field the kind's data does not have
    reduce: (s, e) => (e.kind === 'till.paid_in' ? { cash: s.cash + e.data.euros } : s),
  })
  defineEntity({
    type: 'till',
    initial: { cash: 0 },
    kinds: { 'till.paid_in': v.object({ cents: v.number() }) },
    // @ts-expect-error: a kind compared against that the type does not declare
    reduce: (s, e) => (e.kind === 'till.paid_out' ? s : s),
  })
  defineEntity({
    type: 'till',
    initial: { cash: 0 },
    kinds: { 'till.paid_in': v.object({ cents: v.number() }) },
    reduce: (s) => s,
    invariants: { positive: (s) => s.cash >= 0 || 'negative' },
    // @ts-expect-error: a correction of its own entity must use a declared kind's data
    correct: () => [{ kind: 'till.paid_in', data: { cents: 'ten' } }],
  })
}

export function helperTypes(): void {
  expectType<Equal<KindsOf<typeof stock>, 'stock.moved' | 'stock.counted' | 'stock.oversold'>>(true)
  expectType<Equal<DataOf<typeof stock, 'stock.moved'>, { qty: number }>>(true)
  expectType<Equal<KindsOf<typeof note>, string>>(true)
  expectType<Equal<EntityNameOf<typeof schema>, `stock/${string}`>>(true)
  expectType<Equal<EntityNameOf<typeof mixed>, string>>(true)
  expectType<Equal<EntityTypeFor<typeof schema, 'stock/a'>, typeof stock>>(true)
  // @ts-expect-error: the helper itself can fail: the data of stock.moved is not { qty: string }
  expectType<Equal<DataOf<typeof stock, 'stock.moved'>, { qty: string }>>(true)
}
