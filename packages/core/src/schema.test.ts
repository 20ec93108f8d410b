// Goal: defineEntity / defineSchema accept well-formed entity types and refuse malformed ones,
// duplicates and invariant names that would share correction ids; a schema finds types by the
// `type` part of an entity name and names an unknown type clearly. Method: direct calls and
// tables of bad specs, each checked for kind and message.
import { describe, expect, it } from 'vitest'
import { LedgerError } from './errors.ts'
import { checkEntityType, defineEntity, defineSchema, isSchema } from './schema.ts'

const stock = defineEntity({
  type: 'stock',
  initial: { onHand: 0 },
  reduce: (s: { onHand: number }, e) =>
    e.kind === 'stock.moved' ? { onHand: s.onHand + e.data.qty } : s,
  invariants: { nonNegative: (s) => s.onHand >= 0 || 'stock below zero' },
})
const order = defineEntity({ type: 'order', initial: { lines: 0 }, reduce: (s) => s })

function ledgerError(fn: () => unknown): LedgerError {
  try {
    fn()
  } catch (error) {
    if (error instanceof LedgerError) return error
    throw new Error(`expected a LedgerError, got ${String(error)}`)
  }
  throw new Error('expected a LedgerError, nothing was thrown')
}

describe('defineEntity', () => {
  it('returns a frozen entity type with invariants defaulting to none', () => {
    expect(Object.isFrozen(stock)).toBe(true)
    expect(Object.keys(stock.invariants)).toEqual(['nonNegative'])
    expect(order.invariants).toEqual({})
    expect(checkEntityType(stock)).toBe(stock)
  })

  it('keeps the fold version given, and makes it 1 when none is', () => {
    // Issue 12 case 6: snapshots are keyed by this version, not by the source of reduce.
    expect(stock.version).toBe(1)
    const v3 = defineEntity({ type: 'tally', initial: 0, reduce: (s: number) => s, version: 3 })
    expect(v3.version).toBe(3)
  })

  const reduce = (s: unknown) => s
  it.each([
    [null, 'needs an object'],
    [{ type: 'Stock', initial: 0, reduce }, "entity type 'Stock'"],
    [{ type: 't'.repeat(33), initial: 0, reduce }, 'must match'],
    [{ type: 7, initial: 0, reduce }, "entity type '7'"],
    [{ type: 'stock', initial: 0 }, 'needs a reduce function'],
    [
      { type: 'stock', initial: 0, reduce, invariants: { 'bad name': () => true } },
      "invariant 'bad name'",
    ],
    [{ type: 'stock', initial: 0, reduce, invariants: { ok: 1 } }, "invariant 'ok'"],
    [{ type: 'stock', initial: 0, reduce, invariants: 5 }, 'invariants of'],
    [
      { type: 'stock', initial: 0, reduce, invariants: { short: () => true, Short: () => true } },
      'differs from another only in case',
    ],
    [{ type: 'stock', initial: 0, reduce, correct: 'x' }, 'correct of'],
    [{ type: 'stock', initial: 0, reduce, validate: {} }, 'validate of'],
    [{ type: 'stock', initial: 0, reduce, crdt: 'loro' }, "crdt of 'stock'"],
    [{ type: 'stock', initial: 0, reduce, version: 0 }, "version of 'stock'"],
    [{ type: 'stock', initial: 0, reduce, version: 1.5 }, 'positive integer'],
    [{ type: 'stock', initial: 0, reduce, version: '2' }, 'positive integer'],
  ])('refuses spec %#', (spec, message) => {
    const error = ledgerError(() => defineEntity(spec as never))
    expect(error.kind).toBe('invalid_entity_type')
    expect(error.message).toContain(message)
  })
})

describe('defineSchema', () => {
  const schema = defineSchema(stock, order)

  it('finds entity types by the type part of the name', () => {
    expect(schema.typeOf('stock/s7:espresso-1kg')).toBe(stock)
    expect(schema.find('order/1')).toBe(order)
    expect(schema.find('till/1')).toBeUndefined()
    expect([...schema.types.keys()]).toEqual(['stock', 'order'])
    expect(isSchema(schema)).toBe(true)
    expect(isSchema({ types: {} })).toBe(false)
    expect(isSchema(null)).toBe(false)
  })

  it('names an unknown type clearly', () => {
    const error = ledgerError(() => schema.typeOf('till/7'))
    expect(error.kind).toBe('unknown_type')
    expect(error.message).toBe("schema has no entity type 'till' (entity 'till/7')")
  })

  it('refuses a malformed entity name before looking up the type', () => {
    expect(ledgerError(() => schema.find('no-slash')).kind).toBe('invalid_entity')
  })

  it('refuses duplicates and things that are not entity types', () => {
    const twice = ledgerError(() => defineSchema(stock, order, stock))
    expect(twice.kind).toBe('invalid_entity_type')
    expect(twice.message).toBe("entity type 'stock' is defined twice")
    expect(ledgerError(() => defineSchema({} as never)).message).toContain('made by defineEntity')
    expect(ledgerError(() => checkEntityType({ type: 'x' } as never)).kind).toBe(
      'invalid_entity_type',
    )
  })
})
