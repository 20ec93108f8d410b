// Goal: decide() is the design's write semantics: a valid fact is always appended, with the
// corrections its type drafts (which may name another entity of the tenant); a request is
// appended or refused (conflict, invariant) and a refusal changes nothing; a plain log appends
// all well-formed entries; what cannot be decided yet is deferred. How corrections are made and
// recognised is tested in corrections.test.ts. Method: a stock and an order entity type
// (decide.test-helper.ts), unit cases per branch, bad inputs that must give LedgerError, and a
// seeded property (fixed seed) that repeated decide() calls (also with a second, separately
// built schema, as a second relay would load) give the very same corrections.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { isLogCorrection } from './corrections.ts'
import { decide, decideTyped } from './decide.ts'
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
import { validateEntry } from './entry.ts'
import {
  DEFERRAL_RETRY_MS_MAX,
  ENTRY_CLOCK_SKEW_MS_MAX,
  REASON_LENGTH_MAX,
  UNKNOWN_TYPE_RETRY_MS,
} from './limits.ts'
import { defineEntity, defineSchema } from './schema.ts'

describe('decide: facts', () => {
  it('appends a fact that keeps the invariants, without corrections', () => {
    const d = append(decide(schema, { state: { onHand: 5 }, version: 2 }, makeEntry(), NOW))
    expect(d).toEqual({
      _tag: 'append',
      state: { onHand: 2 },
      corrections: [],
      broken: [],
      others: new Map(),
    })
  })

  it('appends a fact that breaks an invariant, with deterministic corrections', () => {
    const sale = makeEntry()
    const d = append(decide(schema, { state: { onHand: 1 }, version: 2 }, sale, NOW))
    expect(d.broken).toEqual([{ rule: 'nonNegative', reason: 'stock below zero' }])
    expect(d.corrections).toEqual([
      {
        id: `${sale.id}~nonnegative~0`,
        tenant: 'acme',
        entity: 'stock/s7:espresso-1kg',
        kind: 'stock.oversold',
        data: { short: 2, sale: sale.id },
        intent: 'fact',
        corrects: sale.id,
        clientId: 'server',
        clientSeq: 0,
        hlc: sale.hlc,
        occurredAt: NOW,
      },
      {
        id: `${sale.id}~nonnegative~1`,
        tenant: 'acme',
        entity: 'order/s7-r1-0042',
        kind: 'order.balance_due',
        data: { sale: sale.id },
        intent: 'fact',
        corrects: sale.id,
        clientId: 'server',
        clientSeq: 0,
        hlc: sale.hlc,
        occurredAt: NOW,
      },
    ])
    // Every correction is itself a valid entry, and one of the log's corrections.
    for (const c of d.corrections) {
      expect(validateEntry(c)).toBe(c)
      expect(isLogCorrection(c)).toBe(true)
    }
    expect(isLogCorrection(sale)).toBe(false)
  })

  it('folds own-entity corrections into the returned state, not other entities’', () => {
    const s = makeSchema((st) => [
      { kind: 'stock.recounted', data: { qty: -st.onHand } },
      { kind: 'order.note', data: 1, entity: 'order/1' },
    ])
    const d = append(decide(s, { state: { onHand: 1 }, version: 2 }, makeEntry(), NOW))
    expect(d.state).toEqual({ onHand: 0 })
    expect(d.corrections.map((c) => c.entity)).toEqual(['stock/s7:espresso-1kg', 'order/1'])
  })

  it('records a correction that reduce cannot fold as ledger.correction_failed', () => {
    const s = makeSchema(() => [{ kind: 'stock.boom', data: 1 }])
    const d = append(decide(s, { state: { onHand: 0 }, version: 0 }, makeEntry(), NOW))
    expect(d.corrections.map((c) => c.kind)).toEqual(['ledger.correction_failed'])
    expect(JSON.stringify(d.corrections[0]!.data)).toContain(
      'reduce threw on a correction: cannot fold a boom',
    )
  })

  it('clips a very long failure reason to REASON_LENGTH_MAX', () => {
    const s = makeSchema(() => {
      throw new Error('x'.repeat(10_000))
    })
    const d = append(decide(s, { state: { onHand: 0 }, version: 0 }, makeEntry(), NOW))
    const reason = (d.corrections[0]!.data as { reason: string }).reason
    expect(reason).toHaveLength(REASON_LENGTH_MAX)
    expect(reason.endsWith('…')).toBe(true)
  })

  it('appends a breaking fact without corrections when the type has no correct rule', () => {
    const plain = defineSchema(
      defineEntity<Stock>({
        type: 'stock',
        initial: { onHand: 0 },
        reduce: (st, e) => ({ onHand: st.onHand + e.data.qty }),
        invariants: { nonNegative: (st) => st.onHand >= 0 || 'below zero' },
      }),
    )
    const d = append(decide(plain, { state: { onHand: 0 }, version: 0 }, makeEntry(), NOW))
    expect(d.corrections).toEqual([])
    expect(d.broken).toHaveLength(1)
  })
})

describe('decide: one guarded fold for every correction (issue 13 cases 1 and 3)', () => {
  // Goal: corrections to other entities are folded into their targets' states inside decide,
  // and a target that cannot fold, or a correction the log refuses (its size), turns the whole
  // set into one ledger.correction_failed on the fact's own entity. Method: a schema whose
  // order counts balance_due corrections, and one whose order throws on them.
  const order = (throws: boolean) =>
    defineEntity<{ due: number }>({
      type: 'order',
      initial: { due: 0 },
      reduce: (s, e) => {
        if (e.kind !== 'order.balance_due') return s
        if (throws) throw new Error('order cannot fold balance_due')
        return { due: s.due + 1 }
      },
    })
  const stock = (schemaOrder: ReturnType<typeof order>) =>
    defineSchema(
      defineEntity<Stock>({
        type: 'stock',
        initial: { onHand: 0 },
        reduce: (s, e) => ({ onHand: s.onHand + Number(e.data.qty ?? 0) }),
        invariants: { nonNegative: (s) => s.onHand >= 0 || 'stock below zero' },
        correct: (_s, _b, e) => [
          { kind: 'order.balance_due', data: { sale: e.id }, entity: 'order/o1' },
        ],
      }),
      schemaOrder,
    )
  const asked: string[] = []
  const stateOf = (entity: string) => {
    asked.push(entity)
    return { due: 2 }
  }

  it('folds a cross-entity correction into its target and returns the target state', () => {
    const d = append(
      decide(stock(order(false)), { state: { onHand: 0 }, version: 0 }, makeEntry(), NOW, {
        stateOf,
      }),
    )
    expect(d.corrections.map((c) => c.entity)).toEqual(['order/o1'])
    expect(d.others).toEqual(new Map([['order/o1', { due: 3 }]]))
    expect(asked).toContain('order/o1')
  })

  it('records correction_failed on the fact when the target cannot fold the correction', () => {
    const d = append(
      decide(stock(order(true)), { state: { onHand: 0 }, version: 0 }, makeEntry(), NOW, {
        stateOf,
      }),
    )
    expect(d.corrections).toHaveLength(1)
    expect(d.corrections[0]).toMatchObject({
      entity: 'stock/s7:espresso-1kg',
      kind: 'ledger.correction_failed',
      data: { rules: ['nonNegative'] },
    })
    expect(String((d.corrections[0]?.data as { reason?: string } | undefined)?.reason)).toContain(
      'order cannot fold balance_due',
    )
    expect(d.others.size).toBe(0)
  })

  it('records correction_failed when the log refuses a correction, naming the reason', () => {
    const d = append(
      decide(stock(order(false)), { state: { onHand: 0 }, version: 0 }, makeEntry(), NOW, {
        stateOf,
        checkCorrection: (c) => (c.kind === 'order.balance_due' ? 'too big for the log' : true),
      }),
    )
    expect(d.corrections).toHaveLength(1)
    expect(d.corrections[0]?.kind).toBe('ledger.correction_failed')
    expect(String((d.corrections[0]?.data as { reason?: string } | undefined)?.reason)).toContain(
      'too big',
    )
  })

  it('passes a lookup failure through rather than calling it a schema bug', () => {
    const missing = () => {
      throw new RangeError('not loaded')
    }
    expect(() =>
      decide(stock(order(false)), { state: { onHand: 0 }, version: 0 }, makeEntry(), NOW, {
        stateOf: missing,
      }),
    ).toThrow(RangeError)
  })
})

describe('decide: refusals and requests', () => {
  const head = { state: { onHand: 5 }, version: 3 }

  it('appends a request whose expect matches and that keeps the invariants', () => {
    const d = decide(schema, head, makeEntry({ intent: 'request', expect: 3 }), NOW)
    expect(d).toEqual({
      _tag: 'append',
      state: { onHand: 2 },
      corrections: [],
      broken: [],
      others: new Map(),
    })
    expect(decide(schema, head, makeEntry({ intent: 'request' }), NOW)._tag).toBe('append')
  })

  it('refuses a request whose expect differs, with the current version', () => {
    expect(decide(schema, head, makeEntry({ intent: 'request', expect: 2 }), NOW)).toEqual({
      _tag: 'refuse',
      code: 'conflict',
      reason: 'expected version 2, entity is at 3',
    })
  })

  it('refuses a request that would break an invariant, naming the rule', () => {
    const d = decide(schema, head, makeEntry({ intent: 'request', data: { qty: -9 } }), NOW)
    expect(d).toEqual({
      _tag: 'refuse',
      code: 'invariant',
      reason: 'nonNegative: stock below zero',
    })
  })

  it('defers an entry of an unknown type; refuses one that validate refuses or reduce cannot fold', () => {
    // Issue 12 case 7: a type the relay does not know yet is not a decision.
    expect(decide(schema, head, makeEntry({ entity: 'till/1' }), NOW)).toEqual({
      _tag: 'defer',
      code: 'unknown_type',
      reason: "no entity type for 'till/1'",
      retryAfterMs: UNKNOWN_TYPE_RETRY_MS,
    })
    expect(decide(schema, head, makeEntry({ kind: 'order.moved' }), NOW)).toEqual({
      _tag: 'refuse',
      code: 'invalid',
      reason: 'kind order.moved is not a stock kind',
    })
    expect(decide(schema, head, makeEntry({ kind: 'stock.boom' }), NOW)).toEqual({
      _tag: 'refuse',
      code: 'invalid',
      reason: 'reduce threw: cannot fold a boom',
    })
    const throwing = defineEntity({
      type: 'stock',
      initial: 0,
      reduce: (s) => s,
      validate: () => {
        throw new Error('v')
      },
    })
    expect(decideTyped(throwing, { state: 0, version: 0 }, makeEntry(), NOW)).toEqual({
      _tag: 'refuse',
      code: 'invalid',
      reason: 'validate threw: v',
    })
  })

  it('a plain log (no schema) appends every well-formed entry but still honours expect', () => {
    expect(decide(undefined, head, makeEntry({ kind: 'anything.at_all' }), NOW)).toEqual({
      _tag: 'append',
      state: head.state,
      corrections: [],
      broken: [],
      others: new Map(),
    })
    expect(decide(undefined, head, makeEntry({ intent: 'request', expect: 0 }), NOW)._tag).toBe(
      'refuse',
    )
  })

  it.each([
    [() => decide({} as never, head, makeEntry(), NOW), 'invalid_argument', 'schema must be'],
    [() => decide(schema, null as never, makeEntry(), NOW), 'invalid_argument', 'head must be'],
    [
      () => decide(schema, { state: 0, version: -1 }, makeEntry(), NOW),
      'invalid_argument',
      'head version',
    ],
    [() => decide(schema, head, { ...makeEntry(), kind: '' }, NOW), 'invalid_entry', 'entry kind'],
    [() => decide(schema, head, makeEntry(), Number.NaN), 'invalid_argument', 'now must be'],
    [() => decideTyped({} as never, head, makeEntry(), NOW), 'invalid_entity_type', 'defineEntity'],
  ])('refuses bad input %# with LedgerError', (fn, kind, message) => {
    const error = ledgerError(fn)
    expect(error.kind).toBe(kind)
    expect(error.message).toContain(message)
  })
})

describe('decide: deferrals and client corrects (issue 12 case 7, issue 13 cases 11 and 17)', () => {
  const head = { state: { onHand: 10 }, version: 3 }
  const hlcAt = (ms: number) => `${String(ms).padStart(15, '0')}:00000:${CID}`

  it('defers a client entry whose hlc or occurredAt is past the skew, and appends one within it', () => {
    const year30000 = Date.UTC(30_000, 0, 1)
    const far = decide(schema, head, makeEntry({ hlc: hlcAt(year30000) }), NOW)
    expect(far).toMatchObject({ _tag: 'defer', code: 'clock_ahead' })
    expect(far._tag === 'defer' && far.reason).toContain('hlc')
    expect(far._tag === 'defer' && far.retryAfterMs).toBe(DEFERRAL_RETRY_MS_MAX)
    const dayAhead = decide(schema, head, makeEntry({ occurredAt: NOW + 86_400_000 }), NOW)
    expect(dayAhead).toMatchObject({ _tag: 'defer', code: 'clock_ahead' })
    expect(dayAhead._tag === 'defer' && dayAhead.reason).toContain('occurredAt')
    // Just past the skew: retry once it is within, never sooner than a second.
    const just = decide(
      schema,
      head,
      makeEntry({ occurredAt: NOW + ENTRY_CLOCK_SKEW_MS_MAX + 5_000 }),
      NOW,
    )
    expect(just).toMatchObject({ _tag: 'defer', code: 'clock_ahead', retryAfterMs: 5_000 })
    const inside = makeEntry({
      hlc: hlcAt(NOW + ENTRY_CLOCK_SKEW_MS_MAX),
      occurredAt: NOW + ENTRY_CLOCK_SKEW_MS_MAX,
    })
    expect(decide(schema, head, inside, NOW)._tag).toBe('append')
    // A plain log defers too; an entry the log made is never deferred.
    expect(decide(undefined, head, makeEntry({ hlc: hlcAt(year30000) }), NOW)._tag).toBe('defer')
    const fromLog = {
      ...makeEntry({ occurredAt: NOW + 86_400_000 }),
      id: `${CID}-7~nonnegative~0`,
      corrects: `${CID}-7`,
      clientId: 'server',
      clientSeq: 0,
    }
    expect(decide(schema, head, fromLog, NOW)._tag).toBe('append')
  })

  it('refuses a client corrects the log turns down, defers one naming a deferred entry', () => {
    const refund = makeEntry({ corrects: `${CID}-1`, data: { qty: 1 } })
    const asked: string[] = []
    const decideWith = (answer: Parameters<typeof decide>[4]) =>
      decide(schema, head, refund, NOW, answer)
    expect(
      decideWith({
        checkCorrects: (id) => {
          asked.push(id)
          return { _tag: 'refuse', reason: `${id} is not in the log` }
        },
      }),
    ).toEqual({ _tag: 'refuse', code: 'invalid', reason: `${CID}-1 is not in the log` })
    expect(asked).toEqual([`${CID}-1`])
    expect(
      decideWith({
        checkCorrects: () => ({ _tag: 'defer', code: 'unknown_type', reason: 'sale deferred' }),
      }),
    ).toMatchObject({ _tag: 'defer', code: 'unknown_type', reason: 'sale deferred' })
    expect(decideWith({ checkCorrects: () => ({ _tag: 'ok' }) })._tag).toBe('append')
    // A plain log checks corrects too.
    expect(
      decide(undefined, head, refund, NOW, {
        checkCorrects: () => ({ _tag: 'refuse', reason: 'no' }),
      }),
    ).toMatchObject({ _tag: 'refuse', code: 'invalid' })
  })
})

describe('decide: correction ids are stable', () => {
  it('repeated decide() calls, and a second relay’s schema, give the same corrections (seed 5)', () => {
    const other = makeSchema()
    fc.assert(
      fc.property(
        fc.integer({ min: -10, max: 10 }),
        fc.integer({ min: -10, max: 10 }),
        fc.integer({ min: 1, max: 1_000_000 }),
        fc.nat({ max: 100 }),
        (onHand, qty, seq, version) => {
          const sale = makeEntry({ data: { qty } }, seq)
          const first = decide(schema, { state: { onHand }, version }, sale, NOW)
          const again = decide(schema, { state: { onHand }, version }, structuredClone(sale), NOW)
          const elsewhere = decide(other, { state: { onHand }, version }, sale, NOW)
          expect(again).toEqual(first)
          expect(elsewhere).toEqual(first)
          const corrections = append(first).corrections
          expect(corrections.length > 0).toBe(onHand + qty < 0)
          corrections.forEach((c, i) => expect(c.id).toBe(`${CID}-${seq}~nonnegative~${i}`))
        },
      ),
      { seed: 5, numRuns: 300 },
    )
  })
})
