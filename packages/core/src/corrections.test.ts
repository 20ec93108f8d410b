// Goal: the log's own entries are made and recognised one way: correction ids derive from
// (entry id, rule, index) with the index per rule case-insensitively; a `correct` rule that
// throws or returns junk yields one `ledger.correction_failed` on the fact's entity instead of
// an exception; buildCorrections refuses bad input with LedgerError; isLogCorrection counts only
// the log's own corrections, never a client's corrects or a CRDT snapshot. Method: the stock
// type of decide.test-helper.ts with replaced `correct` rules, decided through decide() as the
// log does, and buildCorrections called directly for bad input.
import { describe, expect, it } from 'vitest'
import { buildCorrections, isCrdtSnapshot, isLogCorrection } from './corrections.ts'
import { decide } from './decide.ts'
import {
  append,
  CID,
  ledgerError,
  makeEntry,
  makeSchema,
  NOW,
  schema,
} from './decide.test-helper.ts'
import type { Stock } from './decide.test-helper.ts'
import type { Entry } from './entry.ts'
import { CORRECTIONS_PER_ENTRY_MAX } from './limits.ts'
import type { CorrectionDraft } from './schema.ts'

describe('corrections: drafts become entries', () => {
  it('numbers corrections per rule, case-insensitively like the ids', () => {
    const s = makeSchema(() => [
      { kind: 'stock.a', data: 1, rule: 'audit' },
      { kind: 'stock.b', data: 2, rule: 'Audit' },
      { kind: 'stock.c', data: 3 },
    ])
    const d = append(decide(s, { state: { onHand: 0 }, version: 0 }, makeEntry(), NOW))
    const suffixes = d.corrections.map((c) => c.id.slice(c.id.indexOf('~')))
    expect(suffixes).toEqual(['~audit~0', '~audit~1', '~nonnegative~0'])
    expect(new Set(d.corrections.map((c) => c.id)).size).toBe(3)
  })

  it.each([
    [
      'throws',
      () => {
        throw new Error('rule exploded')
      },
      'rule exploded',
    ],
    ['returns no array', () => 'nope' as never, 'correct must return an array'],
    [
      'returns too many',
      () =>
        Array.from({ length: CORRECTIONS_PER_ENTRY_MAX + 1 }, () => ({ kind: 'stock.x', data: 1 })),
      `over ${CORRECTIONS_PER_ENTRY_MAX}`,
    ],
    ['returns a bad kind', () => [{ kind: 'Bad Kind', data: 1 }], 'entry kind must match'],
    [
      'returns bad data',
      () => [{ kind: 'stock.x', data: { f: () => 1 } as never }],
      'data.f must be plain data',
    ],
    ['names a bad entity', () => [{ kind: 'stock.x', data: 1, entity: 'nope' }], 'one slash'],
    [
      'names a bad rule',
      () => [{ kind: 'stock.x', data: 1, rule: 'not a rule' }],
      "rule 'not a rule'",
    ],
    ['returns null drafts', () => [null as never], 'correction draft 0 must be an object'],
  ])(
    'a correct rule that %s yields one ledger.correction_failed entry',
    (_name, correct, reason) => {
      const s = makeSchema(correct as (s: Stock, e: Entry) => readonly CorrectionDraft[])
      const sale = makeEntry()
      const d = append(decide(s, { state: { onHand: 0 }, version: 4 }, sale, NOW))
      expect(d.corrections).toHaveLength(1)
      const failed = d.corrections[0]!
      expect(failed.id).toBe(`${sale.id}~nonnegative~0`)
      expect(failed.kind).toBe('ledger.correction_failed')
      expect(failed.entity).toBe(sale.entity)
      expect(failed.data).toEqual({
        rules: ['nonNegative'],
        reason: expect.stringContaining(reason),
      })
      expect(d.state).toEqual({ onHand: -3 })
    },
  )
})

describe('corrections: bad input and recognition', () => {
  it.each([
    [
      () =>
        buildCorrections(
          schema.typeOf('order/1'),
          {},
          [{ rule: 'r', reason: 'x' }],
          makeEntry(),
          NOW,
        ),
      'invalid_argument',
      'has no correct rule',
    ],
    [
      () => buildCorrections(schema.typeOf('stock/1'), {}, [], makeEntry(), NOW),
      'invalid_argument',
      'broken must list',
    ],
  ])('buildCorrections refuses bad input %# with LedgerError', (fn, kind, message) => {
    const error = ledgerError(fn)
    expect(error.kind).toBe(kind)
    expect(error.message).toContain(message)
  })

  it('counts only the log’s own corrections, never a client corrects or a CRDT snapshot', () => {
    const sale = makeEntry()
    const fix = append(decide(schema, { state: { onHand: 1 }, version: 2 }, sale, NOW))
      .corrections[0] as Entry
    expect(isLogCorrection(fix)).toBe(true)
    expect(isLogCorrection(makeEntry({ corrects: sale.id }))).toBe(false)
    const snapshot = {
      ...fix,
      id: `${sale.id}~snapshot~0`,
      kind: 'yjs.snapshot',
      data: { through: 3, state: new Uint8Array([1]) },
    }
    // A snapshot as logs before `data.through` alone wrote it, with `corrects`: still not one.
    expect(isCrdtSnapshot(snapshot)).toBe(true)
    expect(isLogCorrection(snapshot)).toBe(false)
    const { corrects: _c, ...current } = snapshot
    expect(isLogCorrection(current)).toBe(false)
    expect(isCrdtSnapshot({ ...snapshot, clientId: CID })).toBe(false)
  })
})
