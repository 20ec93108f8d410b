// Goal (issue 17): for random histories of the point-of-sale schema, a ledger snapshot at any
// version plus the entries after it folds to the same state as the whole ledger, for every
// ledger entity type; every demo state is one the relay can keep (Data within
// SNAPSHOT_STATE_BYTES_MAX); a snapshot under another fold key is never a fold's start.
// Method: fast-check generates entries of every type (sales, declines that correct the order,
// stock and price moves, shifts, gift cards, days, renames); a memory log decides them with
// the demo schema (corrections included), then for each entity and each version k the state at
// k goes through the relay's snapshot encoding (MessagePack, as the stores keep it) and is
// folded forward with the log's `foldStart`/`foldForward`.
import { Decoder, Encoder } from '@msgpack/msgpack'
import fc from 'fast-check'
import { expect, it } from 'vitest'
import { foldKey } from '@ledgerline/core'
import type { Data, Entry, EntityType, StoredEntry } from '@ledgerline/core'
import { checkSnapshotState, createMemoryLogStore, foldForward, foldStart } from '@ledgerline/log'
import type { LedgerSnapshot } from '@ledgerline/protocol'
import { CATALOG, DECLINING_LAST4 } from './catalog.ts'
import schema from './schema.ts'

const TENANT = 'harbour-coffee'
const CLIENT = 'd'.repeat(32)
const SKUS = CATALOG.slice(0, 3).map((c) => c.sku)
// The relay's snapshot encoding (`sqlite-snapshots.ts`): undefined fields left out.
const encoder = new Encoder({ ignoreUndefined: true })
const decoder = new Decoder()

type Draft = { entity: string; kind: string; data: Record<string, unknown> }

const money = fc.integer({ min: 1, max: 5_000 })
const sku = fc.constantFrom(...SKUS)
const n = fc.integer({ min: 0, max: 3 })

const draft: fc.Arbitrary<Draft[]> = fc.oneof(
  // A sale: order, payment (a declining card corrects payment and order), stock, price, day.
  fc
    .record({
      o: n,
      sku,
      qty: fc.integer({ min: 1, max: 4 }),
      unitPrice: money,
      card: fc.boolean(),
      last4: fc.constantFrom('4242', DECLINING_LAST4),
    })
    .map(({ o, sku, qty, unitPrice, card, last4 }) => {
      const order = `o${o}`
      const total = qty * unitPrice
      const line = { sku, name: sku, qty, unitPrice }
      return [
        {
          entity: `order/${order}`,
          kind: 'order.completed',
          data: {
            store: 's1',
            register: 'r1',
            lines: [line],
            subtotal: total,
            discount: 0,
            total,
            tender: card ? 'card' : 'cash',
            day: 's1:2026-01-02',
          },
        },
        card
          ? {
              entity: `payment/${order}-1`,
              kind: 'card.charged',
              data: { order, amount: total, last4, day: 's1:2026-01-02', register: 'r1' },
            }
          : {
              entity: `payment/${order}-1`,
              kind: 'cash.received',
              data: { order, amount: total, tendered: total + 5, change: 5 },
            },
        { entity: `stock/s1:${sku}`, kind: 'stock.sold', data: { sku, qty, order } },
        { entity: `price/s1:${sku}`, kind: 'price.charged', data: { sku, qty, unitPrice, order } },
        {
          entity: 'day/s1:2026-01-02',
          kind: 'day.sale',
          data: { order, register: 'r1', total, tender: card ? 'card' : 'cash' },
        },
      ]
    }),
  fc
    .record({ sku, qty: fc.integer({ min: 1, max: 50 }) })
    .map(({ sku, qty }) => [
      { entity: `stock/s1:${sku}`, kind: 'stock.received', data: { sku, qty } },
    ]),
  fc
    .record({ sku, counted: fc.integer({ min: 0, max: 20 }) })
    .map(({ sku, counted }) => [
      { entity: `stock/s1:${sku}`, kind: 'stock.counted', data: { sku, counted } },
    ]),
  fc.record({ sku, amount: money, from: fc.integer({ min: 0, max: 2_000 }) }).map((r) => [
    {
      entity: `price/s1:${r.sku}`,
      kind: 'price.set',
      data: { sku: r.sku, amount: r.amount, effectiveFrom: r.from },
    },
  ]),
  fc
    .record({ float: money })
    .map(({ float }) => [{ entity: 'drawer/s1:r1', kind: 'shift.opened', data: { float } }]),
  fc.record({ amount: money, out: fc.boolean(), o: n }).map(({ amount, out, o }) => [
    {
      entity: 'drawer/s1:r1',
      kind: out ? 'cash.out' : 'cash.in',
      data: { amount, order: `o${o}` },
    },
  ]),
  fc
    .record({ counted: money })
    .map(({ counted }) => [{ entity: 'drawer/s1:r1', kind: 'shift.closed', data: { counted } }]),
  fc
    .record({ amount: money, g: n, refund: fc.boolean() })
    .map(({ amount, g, refund }) => [
      refund
        ? { entity: `giftcard/g${g}`, kind: 'gc.refunded', data: { amount, order: 'o0' } }
        : { entity: `giftcard/g${g}`, kind: 'gc.issued', data: { amount } },
    ]),
  fc.record({ sku, name: fc.constantFrom('Espresso', 'Short black', 'Ristretto') }).map((r) => [
    {
      entity: `product/s1:${r.sku}`,
      kind: 'product.renamed',
      data: { sku: r.sku, name: r.name, basedOn: '', by: 'hq' },
    },
  ]),
  fc
    .record({ o: n, amount: money })
    .map(({ o, amount }) => [{ entity: `order/o${o}`, kind: 'order.refunded', data: { amount } }]),
)

it('folds a snapshot at any version plus the later entries to the whole ledger, every type', async () => {
  const seen = new Set<string>()
  await fc.assert(
    fc.asyncProperty(fc.array(draft, { minLength: 1, maxLength: 30 }), async (actions) => {
      const store = createMemoryLogStore({ schema, partitions: 4, now: () => 1_000 })
      let seq = 0
      for (const drafts of actions) {
        const entries: Entry[] = drafts.map((d) => {
          seq++
          const at = 1_000 + seq
          return {
            id: `${CLIENT}-${seq}`,
            tenant: TENANT,
            entity: d.entity,
            kind: d.kind,
            data: d.data as Data,
            intent: 'fact',
            clientId: CLIENT,
            clientSeq: seq,
            hlc: `${String(at).padStart(15, '0')}:00000:${CLIENT}`,
            occurredAt: at,
          }
        })
        await store.append(
          TENANT,
          entries.map((entry) => ({ entry })),
        )
      }
      let after: string | undefined
      do {
        const page = await store.entities(after, 100)
        for (const { entity } of page.entities) {
          const type = schema.find(entity) as EntityType<unknown> | undefined
          if (type === undefined || type.crdt !== undefined) continue
          seen.add(type.type)
          const ledger = await store.readEntity(TENANT, entity, 1, 10_000)
          const whole = foldForward(type, foldStart(type, undefined), ledger)
          for (let k = 0; k <= ledger.length; k++) {
            const at = foldForward(type, foldStart(type, undefined), ledger.slice(0, k))
            const checked = checkSnapshotState(at.state, (d) => encoder.encode(d).byteLength)
            // Every demo state is one the relay keeps.
            if ('_tag' in checked) throw new Error(`${entity} @${k}: ${checked.reason}`)
            if (k === 0) continue
            const last = ledger[k - 1] as StoredEntry
            const snapshot: LedgerSnapshot = {
              entity,
              foldKey: foldKey(type),
              version: k,
              partition: last.partition,
              offset: last.offset,
              committedAt: last.committedAt,
              state: decoder.decode(encoder.encode(checked.state)) as Data,
            }
            const resumed = foldForward(type, foldStart(type, snapshot), ledger.slice(k))
            expect(resumed.version).toBe(whole.version)
            expect(resumed.state).toEqual(whole.state)
            // Another fold key (a changed reduce) starts from scratch, never from this state.
            const other = { ...snapshot, foldKey: `${type.type}@${type.version + 1}` }
            expect(foldStart(type, other)).toEqual({ version: 0, offset: 0, state: type.initial })
          }
        }
        after = page.next
      } while (after !== undefined)
    }),
    { numRuns: 60 },
  )
  // Every ledger type of the schema was exercised.
  const ledgerTypes = [...schema.types.values()].filter((t) => t.crdt === undefined)
  expect([...seen].sort()).toEqual(ledgerTypes.map((t) => t.type).sort())
})
