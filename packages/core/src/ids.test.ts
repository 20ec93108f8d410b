// Goal: client ids are 128 random bits in hex, entry ids are `<clientId>-<clientSeq>`, and
// correction ids are a deterministic function of (entry id, rule, index). Method: a fake random
// source, tables of bad inputs that must give LedgerError, and a property (fixed seed) that the
// same inputs always give the same id and different inputs different ids.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { LedgerError } from './errors.ts'
import { correctionId, createClientId, entryId, isClientId, isEntryId } from './ids.ts'
import { ENTRY_ID_LENGTH_MAX, RULE_LENGTH_MAX } from './limits.ts'

const CID = '0123456789abcdef0123456789abcdef'

function ledgerError(fn: () => unknown): LedgerError {
  try {
    fn()
  } catch (error) {
    if (error instanceof LedgerError) return error
    throw new Error(`expected a LedgerError, got ${String(error)}`)
  }
  throw new Error('expected a LedgerError, nothing was thrown')
}

describe('createClientId', () => {
  it('turns 16 random bytes into 32 lowercase hex digits', () => {
    const id = createClientId((bytes) => bytes.forEach((_, i) => (bytes[i] = i * 17)))
    expect(id).toBe('00112233445566778899aabbccddeeff')
    expect(isClientId(id)).toBe(true)
  })

  it('refuses a random source that fills nothing', () => {
    const error = ledgerError(() => createClientId(() => {}))
    expect(error.kind).toBe('invalid_argument')
    expect(error.message).toContain('only zeros')
  })
})

describe('entryId', () => {
  it('joins client id and clientSeq', () => {
    expect(entryId(CID, 42)).toBe(`${CID}-42`)
    expect(isEntryId(entryId(CID, Number.MAX_SAFE_INTEGER))).toBe(true)
  })

  it.each([
    ['short', 1, 'clientId'],
    [CID.toUpperCase(), 1, 'clientId'],
    [CID, 0, 'clientSeq'],
    [CID, 1.5, 'clientSeq'],
    [CID, Number.MAX_SAFE_INTEGER + 1, 'clientSeq'],
  ])('refuses (%s, %s)', (clientId, seq, field) => {
    const error = ledgerError(() => entryId(clientId, seq))
    expect(error.kind).toBe('invalid_argument')
    expect(error.message).toContain(field)
  })
})

describe('correctionId', () => {
  it('is `<entry id>~<rule lower-cased>~<index>`', () => {
    expect(correctionId(`${CID}-42`, 'nonNegative', 0)).toBe(`${CID}-42~nonnegative~0`)
    expect(correctionId(`${CID}-42~short~0`, 'audit', 3)).toBe(`${CID}-42~short~0~audit~3`)
    expect(isEntryId(`${CID}-42~nonnegative~0`)).toBe(true)
  })

  it.each([
    ['not-an-id', 'rule', 0, 'offending id'],
    [`${CID}-1`, '', 0, 'rule'],
    [`${CID}-1`, 'has space', 0, 'rule'],
    [`${CID}-1`, 'r'.repeat(RULE_LENGTH_MAX + 1), 0, 'rule'],
    [`${CID}-1`, 42 as unknown as string, 0, 'rule'],
    [`${CID}-1`, 'rule', -1, 'index'],
    [`${CID}-1`, 'rule', 0.5, 'index'],
  ])('refuses (%s, %s, %s)', (id, rule, index, field) => {
    const error = ledgerError(() => correctionId(id, rule, index))
    expect(error.kind).toBe('invalid_argument')
    expect(error.message).toContain(field)
  })

  it('refuses an id longer than ENTRY_ID_LENGTH_MAX', () => {
    let id = `${CID}-1`
    const error = ledgerError(() => {
      for (;;) id = correctionId(id, 'r'.repeat(40), 0)
    })
    expect(id.length).toBeLessThanOrEqual(ENTRY_ID_LENGTH_MAX)
    expect(error.message).toContain(`longer than ${ENTRY_ID_LENGTH_MAX}`)
  })

  it('is deterministic and injective over (entry id, rule, index) (seed 7)', () => {
    const arbitrary = fc.record({
      seq: fc.integer({ min: 1, max: 1_000_000 }),
      rule: fc.stringMatching(/^[a-z0-9_.-]{1,12}$/),
      index: fc.integer({ min: 0, max: 15 }),
    })
    fc.assert(
      fc.property(arbitrary, arbitrary, (a, b) => {
        const idA = correctionId(`${CID}-${a.seq}`, a.rule, a.index)
        expect(correctionId(`${CID}-${a.seq}`, a.rule, a.index)).toBe(idA)
        const same = a.seq === b.seq && a.rule === b.rule && a.index === b.index
        expect(correctionId(`${CID}-${b.seq}`, b.rule, b.index) === idA).toBe(same)
      }),
      { seed: 7, numRuns: 200 },
    )
  })
})

describe('isEntryId', () => {
  it.each([
    [`${CID}-1`, true],
    [`${CID}-0`, false],
    [`${CID}-01`, false],
    [`${CID}-1~rule~01`, false],
    [`${CID}-1~~0`, false],
    [`${CID}-1~rule`, false],
    [`${CID.slice(1)}-1`, false],
    [42, false],
  ])('%j is %s', (value, expected) => {
    expect(isEntryId(value)).toBe(expected)
  })
})
