// Goal: typed kinds validate at run time wherever an entry is appended or decided: an entity
// type that declares kinds refuses an undeclared kind and data its kind's validator refuses,
// with a reason naming the kind and the path; `decide` refuses such an entry with `invalid`; a
// correction of an undeclared kind becomes `ledger.correction_failed`; async validators are
// refused when the type is defined; a throwing validator is a refusal, not a crash; an
// untyped type is exactly as before. Method: valibot schemas and hand-made Standard Schema
// objects (any conforming library works), unit cases per branch, and a fast-check property
// (fixed seed) that `validateKind` agrees with valibot's own verdict on random data.
import fc from 'fast-check'
import * as v from 'valibot'
import { describe, expect, it } from 'vitest'
import { decide } from './decide.ts'
import type { Entry } from './entry.ts'
import { validateEntry } from './entry.ts'
import { LedgerError } from './errors.ts'
import { isStandardSchema, validateKind } from './kinds.ts'
import type { StandardSchemaV1 } from './standard-schema.ts'
import { defineEntity, defineSchema } from './schema.ts'

const CID = '0123456789abcdef0123456789abcdef'
const NOW = 1_732_700_000_000

const stock = defineEntity({
  type: 'stock',
  initial: { onHand: 0 },
  kinds: {
    'stock.moved': v.object({ qty: v.pipe(v.number(), v.integer()) }),
    'stock.oversold': v.object({ short: v.number(), sale: v.string() }),
  },
  reduce: (s, e) => (e.kind === 'stock.moved' ? { onHand: s.onHand + e.data.qty } : s),
  invariants: { nonNegative: (s) => s.onHand >= 0 || 'stock below zero' },
  correct: (s, _broken, e) => [{ kind: 'stock.oversold', data: { short: -s.onHand, sale: e.id } }],
  validate: (e) =>
    e.kind === 'stock.moved' && e.data.qty === 0 ? 'a move of 0 moves nothing' : true,
})
const schema = defineSchema(stock)

function entry(kind: string, data: unknown, over: Partial<Entry> = {}): Entry {
  return validateEntry({
    id: `${CID}-7`,
    tenant: 'acme',
    entity: 'stock/s1:espresso',
    kind,
    data,
    intent: 'fact',
    clientId: CID,
    clientSeq: 7,
    hlc: '001732700000000:00000:node',
    occurredAt: NOW,
    ...over,
  })
}

describe('validateKind', () => {
  it('accepts declared kinds with valid data and names the path of bad data', () => {
    expect(validateKind(stock, 'stock.moved', { qty: -1 })).toBe(true)
    const verdict = validateKind(stock, 'stock.moved', { qty: '5' })
    expect(verdict).toMatch(/^stock\.moved data\.qty: /)
    expect(validateKind(stock, 'stock.moved', { qty: 1.5 })).toMatch(/data\.qty: .*integer/i)
    expect(validateKind(stock, 'stock.moved', null)).toMatch(/^stock\.moved data: /)
  })

  it('refuses a kind the type does not declare, listing the ones it does', () => {
    expect(validateKind(stock, 'stock.movd', { qty: 1 })).toBe(
      "kind 'stock.movd' is not declared by entity type 'stock' (it declares stock.moved, stock.oversold)",
    )
    // Inherited keys are not kinds.
    expect(validateKind(stock, 'constructor', {})).toMatch(/not declared/)
  })

  it('accepts everything on an untyped type', () => {
    const note = defineEntity({ type: 'note', initial: 0, reduce: (s) => s + 1 })
    expect(validateKind(note, 'anything.at_all', { any: 'data' })).toBe(true)
    expect(note.kinds).toBeUndefined()
    expect(note.validate).toBeUndefined()
  })

  it('lists at most three issues and counts the rest', () => {
    const wide = defineEntity({
      type: 'wide',
      initial: null,
      kinds: {
        'wide.set': v.object({ a: v.string(), b: v.string(), c: v.string(), d: v.string() }),
      },
      reduce: (s) => s,
    })
    const verdict = validateKind(wide, 'wide.set', { a: 1, b: 2, c: 3, d: 4 })
    expect(verdict).toMatch(/data\.a: .*; data\.b: .*; data\.c: .* \(and 1 more\)$/)
  })

  it('turns a validator that throws, or one that turns async on some value, into a refusal', () => {
    const throwing = standard(() => {
      throw new Error('validator bug')
    })
    // Sync for the probe `defineEntity` makes, async afterwards: as a zod schema with an async
    // refinement behaves. Its promise records whether a rejection handler was attached.
    let calls = 0
    let handled = false
    const rejected: PromiseLike<never> = {
      // oxlint-disable-next-line unicorn/no-thenable -- what a validator hands back is the subject
      then: (_onValue, onRejection) => {
        handled = typeof onRejection === 'function'
        return Promise.resolve().then(() => onRejection?.(new Error('late'))) as never
      },
    }
    const lateAsync = standard(() =>
      calls++ === 0 ? { issues: [{ message: 'required' }] } : rejected,
    )
    const t = defineEntity({
      type: 't',
      initial: null,
      kinds: { 't.thrown': throwing, 't.late': lateAsync },
      reduce: (s) => s,
    })
    expect(validateKind(t, 't.thrown', {})).toBe('t.thrown: its validator threw: validator bug')
    expect(validateKind(t, 't.late', {})).toMatch(/^t\.late: its validator is async/)
    expect(handled).toBe(true)
  })

  it('agrees with the validator library on random data (property)', () => {
    const moved = v.object({ qty: v.pipe(v.number(), v.integer()) })
    fc.assert(
      fc.property(
        fc.oneof(
          fc.record({ qty: fc.oneof(fc.integer(), fc.double(), fc.string(), fc.constant(null)) }),
          fc.jsonValue(),
        ),
        (data) => {
          expect(validateKind(stock, 'stock.moved', data) === true).toBe(v.is(moved, data))
        },
      ),
      { seed: 20261127, numRuns: 300 },
    )
  })
})

describe('defineEntity with kinds', () => {
  it('refuses async validators, non-validators and bad kind names when the type is defined', () => {
    const define = (kinds: unknown) => () =>
      defineEntity({ type: 'x', initial: 0, kinds: kinds as never, reduce: (s) => s })
    expect(define({ 'x.set': v.objectAsync({ n: v.number() }) })).toThrow(
      /kind 'x\.set' of 'x' has an async validator/,
    )
    expect(define({ 'x.set': { parse: () => true } })).toThrow(/needs a Standard Schema validator/)
    expect(define({ 'X Set': v.object({}) })).toThrow(/kind 'X Set' of 'x'/)
    expect(define([v.object({})])).toThrow(/kinds of 'x' must be an object/)
    for (const f of [define({ 'x.set': 1 }), define(null)]) {
      expect(f).toThrow(LedgerError)
      expect(f).toThrow(expect.objectContaining({ kind: 'invalid_entity_type' }))
    }
  })

  it("runs the type's own validate after its kind's validator passed", () => {
    expect(stock.validate?.(entry('stock.moved', { qty: 0 }))).toBe('a move of 0 moves nothing')
    expect(stock.validate?.(entry('stock.moved', { qty: 'x' }))).toMatch(/data\.qty/)
    expect(stock.validate?.(entry('stock.moved', { qty: 2 }))).toBe(true)
  })

  it('accepts any Standard Schema validator, not only valibot', () => {
    const positive = standard((value) =>
      typeof value === 'number' && value > 0 ? { value } : { issues: [{ message: 'not > 0' }] },
    )
    expect(isStandardSchema(positive)).toBe(true)
    const t = defineEntity({
      type: 't',
      initial: 0,
      kinds: { 't.add': positive },
      reduce: (s) => s,
    })
    expect(validateKind(t, 't.add', 3)).toBe(true)
    expect(validateKind(t, 't.add', -3)).toBe('t.add data: not > 0')
  })
})

describe('decide with typed kinds', () => {
  it('refuses a fact of an undeclared kind or with bad data as invalid, with the reason', () => {
    const bad = decide(
      schema,
      { state: stock.initial, version: 0 },
      entry('stock.moved', { qty: '5' }),
      NOW,
    )
    expect(bad).toMatchObject({ _tag: 'refuse', code: 'invalid' })
    expect(bad._tag === 'refuse' && bad.reason).toMatch(/^stock\.moved data\.qty: /)
    const unknown = decide(
      schema,
      { state: stock.initial, version: 0 },
      entry('stock.movd', {}),
      NOW,
    )
    expect(unknown).toMatchObject({ _tag: 'refuse', code: 'invalid' })
    expect(unknown._tag === 'refuse' && unknown.reason).toMatch(
      /kind 'stock\.movd' is not declared/,
    )
  })

  it('appends a valid fact and its typed correction', () => {
    const d = decide(
      schema,
      { state: { onHand: 0 }, version: 3 },
      entry('stock.moved', { qty: -2 }),
      NOW,
    )
    expect(d._tag).toBe('append')
    if (d._tag !== 'append') return
    expect(d.corrections.map((c) => [c.kind, c.data])).toEqual([
      ['stock.oversold', { short: 2, sale: `${CID}-7` }],
    ])
  })

  it('turns a correction its type would refuse into ledger.correction_failed', () => {
    const sloppy = defineEntity({
      type: 'stock',
      initial: { onHand: 0 },
      kinds: {
        'stock.moved': v.object({ qty: v.number() }),
        'stock.oversold': v.object({ short: v.number() }),
      },
      reduce: (s, e) => (e.kind === 'stock.moved' ? { onHand: s.onHand + e.data.qty } : s),
      invariants: { nonNegative: (s) => s.onHand >= 0 || 'stock below zero' },
      // A schema bug the compiler cannot see: the draft's data comes from an untyped source.
      correct: (s) => [{ kind: 'stock.oversold', data: JSON.parse(`{"short":"${-s.onHand}"}`) }],
    })
    const d = decide(
      defineSchema(sloppy),
      { state: { onHand: 0 }, version: 0 },
      entry('stock.moved', { qty: -1 }),
      NOW,
    )
    expect(d._tag).toBe('append')
    if (d._tag !== 'append') return
    expect(d.corrections).toHaveLength(1)
    expect(d.corrections[0]?.kind).toBe('ledger.correction_failed')
    expect((d.corrections[0]?.data as { reason?: string } | undefined)?.reason).toMatch(
      /correction 0 \(stock\.oversold\) refused: stock\.oversold data\.short: /,
    )
  })
})

/** A Standard Schema validator made by hand, as any conforming library would make one. */
function standard(validate: (value: unknown) => unknown): StandardSchemaV1 {
  return {
    '~standard': {
      version: 1,
      vendor: 'ledgerline-test',
      validate: validate as StandardSchemaV1['~standard']['validate'],
    },
  }
}
