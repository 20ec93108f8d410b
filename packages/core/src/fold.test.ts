// Goal: folding is pure and ordered by version; confirmed refuses gaps; view is confirmed then
// own pending entries in clientSeq order and equals confirmed once those entries are confirmed;
// checkInvariants reports broken rules in declaration order. Method: a stock-like entity type
// whose reduce does NOT commute (a recount sets the level, a move adds, the state keeps the last
// kinds seen), unit cases, and seeded fast-check properties (fixed seeds) over random ledgers.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import type { Entry, StoredEntry } from './entry.ts'
import { LedgerError } from './errors.ts'
import { checkInvariants, confirmed, fold, view } from './fold.ts'
import { defineEntity } from './schema.ts'

const CID = '0123456789abcdef0123456789abcdef'

interface Stock {
  readonly onHand: number
  readonly recent: readonly string[]
}

const stock = defineEntity<Stock>({
  type: 'stock',
  initial: { onHand: 0, recent: [] },
  reduce: (s, e) => {
    const recent = [...s.recent, `${e.kind}:${JSON.stringify(e.data)}`].slice(-4)
    if (e.kind === 'stock.moved') return { onHand: s.onHand + e.data.qty, recent }
    if (e.kind === 'stock.counted') return { onHand: e.data.onHand, recent }
    return { ...s, recent }
  },
  invariants: {
    nonNegative: (s) => s.onHand >= 0 || `stock below zero: ${s.onHand}`,
    sane: (s) => s.onHand < 1000 || 'too much stock',
    throws: (s) => {
      if (s.onHand === 666) throw new Error('cursed')
      return true
    },
  },
})

function makeEntry(seq: number, kind: string, data: Entry['data']): Entry {
  return {
    id: `${CID}-${seq}`,
    tenant: 'acme',
    entity: 'stock/s7:espresso-1kg',
    kind,
    data,
    intent: 'fact',
    clientId: CID,
    clientSeq: seq,
    hlc: `${String(seq).padStart(15, '0')}:00000:${CID}`,
    occurredAt: seq,
  }
}

function store(entry: Entry, version: number): StoredEntry {
  return { ...entry, version, partition: 2, offset: version + 100, committedAt: version }
}

const op = fc.oneof(
  fc.record({
    kind: fc.constant('stock.moved'),
    data: fc.record({ qty: fc.integer({ min: -20, max: 20 }) }),
  }),
  fc.record({
    kind: fc.constant('stock.counted'),
    data: fc.record({ onHand: fc.integer({ min: 0, max: 50 }) }),
  }),
  fc.record({
    kind: fc.constant('stock.noted'),
    data: fc.record({ note: fc.string({ maxLength: 5 }) }),
  }),
)

describe('fold and confirmed', () => {
  const ledger = [
    store(makeEntry(1, 'stock.moved', { qty: 5 }), 1),
    store(makeEntry(2, 'stock.counted', { onHand: 2 }), 2),
    store(makeEntry(3, 'stock.moved', { qty: -3 }), 3),
  ]

  it('folds in version order whatever order the entries come in', () => {
    const expected = {
      onHand: -1,
      recent: ['stock.moved:{"qty":5}', 'stock.counted:{"onHand":2}', 'stock.moved:{"qty":-3}'],
    }
    expect(confirmed(stock, ledger)).toEqual(expected)
    expect(confirmed(stock, [ledger[2]!, ledger[0]!, ledger[1]!])).toEqual(expected)
    expect(fold(stock, stock.initial, ledger)).toEqual(expected)
  })

  it('starts from a snapshot', () => {
    const snapshot = { state: { onHand: 10, recent: [] }, version: 2 }
    expect(confirmed(stock, [ledger[2]!], snapshot).onHand).toBe(7)
  })

  it('refuses a ledger with a gap or a duplicate version', () => {
    for (const entries of [[ledger[0]!, ledger[2]!], [ledger[1]!], [ledger[0]!, ledger[0]!]]) {
      let caught: unknown
      try {
        confirmed(stock, entries)
      } catch (error) {
        caught = error
      }
      expect(caught).toBeInstanceOf(LedgerError)
      expect((caught as LedgerError).kind).toBe('invalid_argument')
      expect((caught as LedgerError).message).toMatch(
        /ledger has a gap: expected version \d, got \d/,
      )
    }
  })

  it('refuses bad arguments with LedgerError', () => {
    expect(() => confirmed(stock, 'x' as never)).toThrow(LedgerError)
    expect(() => confirmed(stock, [], { state: stock.initial, version: -1 })).toThrow(
      'from.version',
    )
    expect(() => confirmed({} as never, [])).toThrow('expected an entity type made by defineEntity')
    expect(() => fold(stock, stock.initial, 5 as never)).toThrow('fold needs an iterable')
    expect(() => view(stock, stock.initial, null as never)).toThrow('pending must be an array')
  })

  it('is deterministic: any order of the same ledger folds to the same state (seed 11)', () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 30 }), fc.integer(), (ops, salt) => {
        const entries = ops.map((o, i) => store(makeEntry(i + 1, o.kind, o.data), i + 1))
        const expected = fold(stock, stock.initial, entries)
        const shuffled = [...entries].sort(
          (a, b) => ((a.version * 7919) ^ salt) - ((b.version * 7919) ^ salt),
        )
        expect(confirmed(stock, shuffled)).toEqual(expected)
        expect(confirmed(stock, entries)).toEqual(confirmed(stock, entries))
      }),
      { seed: 11, numRuns: 300 },
    )
  })
})

describe('view', () => {
  it('applies own pending entries in clientSeq order on top of confirmed', () => {
    const pending = [
      makeEntry(5, 'stock.moved', { qty: 1 }),
      makeEntry(4, 'stock.counted', { onHand: 10 }),
    ]
    expect(view(stock, { onHand: 3, recent: [] }, pending).onHand).toBe(11)
  })

  it('equals confirmed once every pending entry is confirmed (seed 12)', () => {
    fc.assert(
      fc.property(
        fc.array(op, { minLength: 1, maxLength: 30 }),
        fc.nat(),
        fc.array(fc.nat(), { maxLength: 30 }),
        (ops, cut, keys) => {
          const entries = ops.map((o, i) => makeEntry(i + 1, o.kind, o.data))
          const k = cut % (entries.length + 1)
          const acked = entries.slice(0, k).map((e, i) => store(e, i + 1))
          // Pending entries reach view in any order (an outbox scan is not ordered).
          const pending = entries.slice(k).map((e, i) => ({ e, key: keys[i] ?? i }))
          pending.sort((a, b) => a.key - b.key)
          const optimistic = view(
            stock,
            confirmed(stock, acked),
            pending.map((p) => p.e),
          )
          // The server log confirms them in clientSeq order, as the outbox drains.
          const all = entries.map((e, i) => store(e, i + 1))
          expect(optimistic).toEqual(confirmed(stock, all))
        },
      ),
      { seed: 12, numRuns: 300 },
    )
  })
})

describe('checkInvariants', () => {
  it('lists broken invariants in declaration order with their reasons', () => {
    expect(checkInvariants(stock, { onHand: 5, recent: [] })).toEqual([])
    expect(checkInvariants(stock, { onHand: -2, recent: [] })).toEqual([
      { rule: 'nonNegative', reason: 'stock below zero: -2' },
    ])
  })

  it('counts an invariant that throws or returns false as broken', () => {
    expect(checkInvariants(stock, { onHand: 666, recent: [] })).toEqual([
      { rule: 'throws', reason: 'invariant threw: cursed' },
    ])
    const strict = defineEntity({
      type: 'x',
      initial: 0,
      reduce: (s) => s,
      invariants: { pos: (s: number) => (s > 0) as true },
    })
    expect(checkInvariants(strict, 0)).toEqual([{ rule: 'pos', reason: 'broken' }])
  })
})
