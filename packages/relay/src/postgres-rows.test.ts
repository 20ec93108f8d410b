// Goal: what a PostgreSQL group reads is keyed and answered as the planner expects: each client
// and entity asked once, refused items asking for no head and no `corrects`; earlier results
// taken entry before refusal before deferral, listing only the log's own corrections of an
// entry; and the lookups answering `undefined` for anything not read (so the planner asks).
// Method: hand-made calls and rows, no database.
import { describe, expect, it } from 'vitest'
import { entryId, SERVER_CLIENT_ID } from '@ledgerline/core'
import type { Entry } from '@ledgerline/core'
import { joinKey } from '@ledgerline/log'
import type { PlanCall } from '@ledgerline/log'
import { encodeEntryBody } from './entry-body.ts'
import { groupKeys, lookupsOf, takeClients, takePrevious } from './postgres-rows.ts'
import type { Loaded } from './postgres-rows.ts'
import type { PreviousRow } from './postgres-sql.ts'
import { groupEntry } from './pg-group.test-helper.ts'

const CID = '000000000000000000000000000000c3'
const entry = (seq: number, entity: string, over: Partial<Entry> = {}) =>
  groupEntry(CID, seq, entity, over)

describe('postgres-rows', () => {
  it('asks for each client and entity once, and for no head or corrects of a refused item', () => {
    const calls: PlanCall[] = [
      {
        tenant: 'acme',
        items: [
          { entry: entry(1, 'stock/s1') },
          { entry: entry(2, 'stock/s1', { corrects: 'other-1' }) },
          {
            entry: entry(3, 'stock/hidden', { corrects: 'other-2' }),
            refuse: { code: 'forbidden', reason: 'no grant' },
          },
        ],
      },
      {
        tenant: 'acme',
        items: [{ entry: { ...entry(9, 'order/o1'), clientId: SERVER_CLIENT_ID } }],
      },
    ]
    const keys = groupKeys(calls)
    expect(keys.clients).toEqual([['acme', CID]])
    expect(keys.entities).toEqual([
      ['acme', 'stock/s1'],
      ['acme', 'order/o1'],
    ])
    expect(keys.corrects).toEqual([['acme', 'other-1']])
    expect(keys.candidates.map((c) => c[1])).toEqual([
      entryId(CID, 1),
      entryId(CID, 2),
      entryId(CID, 3),
      entryId(CID, 9),
    ])
  })

  it('takes an entry before a refusal before a deferral, with only the log’s corrections', () => {
    const loaded = empty()
    const sale = entry(1, 'stock/s1')
    const fix: Entry = {
      ...entry(1, 'stock/s1'),
      id: `${sale.id}~nonnegative~0`,
      clientId: SERVER_CLIENT_ID,
      clientSeq: 0,
      corrects: sale.id,
    }
    const refund: Entry = { ...entry(5, 'stock/s1'), corrects: sale.id }
    const found: PreviousRow = {
      kind: 'found',
      tenant: 'acme',
      id: sale.id,
      entity: 'stock/s1',
      partition: 1,
      offset: 4,
      version: 2,
      committed_at: 1000,
      digest: null,
      body: null,
    }
    const correction = (e: Entry, version: number): PreviousRow => ({
      ...found,
      kind: 'correction',
      id: e.id,
      version,
      offset: 4 + version,
      corrects: sale.id,
      body: encodeEntryBody(e),
    })
    takePrevious(
      [found, correction(fix, 3), correction(refund, 4)],
      [
        { tenant: 'acme', id: sale.id, code: 'conflict', reason: 'r', head: 1, digest: null },
        { tenant: 'acme', id: 'r-1', code: 'conflict', reason: 'late', head: 1, digest: null },
      ],
      [
        { tenant: 'acme', id: 'r-1', code: 'clock_ahead', digest: Buffer.from([1]) },
        { tenant: 'acme', id: 'd-1', code: 'unknown_type', digest: Buffer.from([2]) },
      ],
      loaded,
    )
    const lookups = lookupsOf(loaded)
    const previous = lookups.previous('acme', sale.id)
    expect(previous?._tag).toBe('entry')
    if (previous?._tag !== 'entry') return
    expect(previous.result.corrections.map((c) => c.id)).toEqual([fix.id])
    expect(lookups.previous('acme', 'r-1')?._tag).toBe('refusal')
    expect(lookups.previous('acme', 'd-1')).toEqual({
      _tag: 'deferral',
      digest: Buffer.from([2]),
      code: 'unknown_type',
    })
    expect(lookups.previous('acme', 'never-read')).toBeUndefined()
  })

  it('answers a client asked for but never seen as new, and one never asked as not read', () => {
    const loaded = empty()
    takeClients(
      [
        ['acme', 'a'],
        ['acme', 'b'],
      ],
      [{ tenant: 'acme', client_id: 'b', high: 7, subject: 'till-1' }],
      loaded,
    )
    const lookups = lookupsOf(loaded)
    expect(lookups.client('acme', 'a')).toEqual({ high: 0, subject: null })
    expect(lookups.client('acme', 'b')).toEqual({ high: 7, subject: 'till-1' })
    expect(lookups.client('acme', 'c')).toBeUndefined()
    expect(lookups.entityHead('acme', 'stock/s1')).toBeUndefined()
    expect(lookups.partitionHead(0)).toBeUndefined()
    expect(loaded.clients.has(joinKey('acme', 'a'))).toBe(true)
  })
})

function empty(): Loaded {
  return {
    locked: new Set(),
    partitionHeads: new Map(),
    clients: new Map(),
    previous: new Map(),
    originals: new Map(),
    heads: new Map(),
  }
}
