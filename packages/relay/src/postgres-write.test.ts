// Goal: what a PostgreSQL group writes is made one way whichever path makes it: the columns
// encoded before the locks (the usual plan) and the ones made from the plan (a plan with
// corrections or refusals) give the same write parameters; bodies carry no positions; digests
// are kept for client items, refused ones too; the `corrects` column holds the log's own
// corrections only. Method: real plans from `planGroup` over empty lookups (plain and with the
// contract schema), their parameters compared between the two paths and read back.
import { describe, expect, it } from 'vitest'
import { digestHex, entryDigest } from '@ledgerline/core'
import type { Entry, Schema, StoredEntry } from '@ledgerline/core'
import { planGroup } from '@ledgerline/log'
import type { PlanCall } from '@ledgerline/log'
import { CONTRACT_SCHEMA } from '@ledgerline/testkit'
import { decodeEntryBody } from './entry-body.ts'
import { nodeSha256 } from './node-crypto.ts'
import { groupCall, groupEntry } from './pg-group.test-helper.ts'
import { bodyOf, encodeItems, entryOf, writeQuery } from './postgres-write.ts'

const CID = '000000000000000000000000000000b2'
const entry = (seq: number, entity: string, data: Entry['data']) =>
  groupEntry(CID, seq, entity, { data })
const call = groupCall
const PARTITIONS = 4

describe('postgres-write', () => {
  it('gives the same parameters from the columns made before the locks as from the plan', () => {
    const calls = [call(entry(1, 'stock/s1', { qty: 2 }), entry(2, 'stock/s2', { qty: 1 }))]
    const encoded = encodeItems(calls, nodeSha256)
    const plan = plan_(undefined, calls)
    expect(plan.entries.map((e) => e.source)).toEqual(encoded.sources)
    const early = writeQuery(plan, encoded, 'payload')
    const late = writeQuery(plan, { ...encoded, sources: [] }, 'payload')
    expect(late.values).toEqual(early.values)
    expect(early.name).toBe('ledgerline_write_v4')
  })

  it('keeps digests of refused client items but writes no body for them', () => {
    const refused = entry(1, 'stock/s1', { qty: 1 })
    const kept = entry(2, 'stock/s2', { qty: 1 })
    const calls: PlanCall[] = [
      {
        tenant: 'acme',
        items: [
          { entry: refused, refuse: { code: 'forbidden', reason: 'no grant' } },
          { entry: kept },
        ],
      },
    ]
    const encoded = encodeItems(calls, nodeSha256)
    expect(encoded.sources).toEqual([kept])
    expect(encoded.bodies.has(refused)).toBe(false)
    expect(digestHex(encoded.digests.get(refused) as Uint8Array)).toBe(
      digestHex(entryDigest(refused, nodeSha256)),
    )
    const plan = plan_(undefined, calls)
    const values = writeQuery(plan, encoded, '').values as unknown[]
    // Refusals (ids at 10, digests at 23) and the kept entry's digest (22).
    expect(values[10]).toBe(`{"${refused.id}"}`)
    expect(values[23]).toBe(`{"${digestHex(entryDigest(refused, nodeSha256))}"}`)
    expect(values[22]).toBe(`{"${digestHex(entryDigest(kept, nodeSha256))}"}`)
  })

  it("writes a correction's body without positions and its corrects, a client entry's none", () => {
    const sale = entry(1, 'stock/s1', { qty: -3 })
    const calls = [call(sale)]
    const encoded = encodeItems(calls, nodeSha256)
    const plan = plan_(CONTRACT_SCHEMA, calls)
    expect(plan.entries).toHaveLength(2)
    const correction = plan.entries[1]?.stored as StoredEntry
    const values = writeQuery(plan, encoded, '').values as unknown[]
    expect(values[6]).toBe(`{NULL,"${sale.id}"}`)
    const bodies = values[8] as Buffer
    const starts = parse(values[20] as string)
    const lengths = parse(values[21] as string)
    const second = bodies.subarray(starts[1]! - 1, starts[1]! - 1 + lengths[1]!)
    expect(decodeEntryBody(second)).toEqual(entryOf(correction))
    expect(Object.keys(decodeEntryBody(second))).not.toContain('version')
  })

  it('drops positions and undefined fields from a body', () => {
    const stored = {
      ...entry(1, 'stock/s1', { qty: 1 }),
      expect: undefined,
      version: 3,
      partition: 1,
      offset: 9,
      committedAt: 5,
    } as unknown as Entry
    const body = bodyOf(stored)
    expect(Object.keys(body).sort()).toEqual(Object.keys(entry(1, 'stock/s1', { qty: 1 })).sort())
  })
})

function plan_(schema: Schema | undefined, calls: readonly PlanCall[]) {
  return planGroup(
    {
      schema,
      partitions: PARTITIONS,
      committedAt: 1_700_000_100_000,
      hash: nodeSha256,
      lookups: {
        client: () => ({ high: 0, subject: null }),
        previous: () => null,
        originals: () => [],
        entityHead: () => ({
          version: 0,
          offset: 0,
          state: schema?.find('stock/s1')?.initial ?? null,
        }),
        partitionHead: () => 0,
      },
    },
    calls,
  )
}

function parse(intArray: string): number[] {
  return intArray.slice(1, -1).split(',').map(Number)
}
