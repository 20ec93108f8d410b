// Goal: entity names, tenants and patterns accept exactly what the design allows and refuse the
// rest with a LedgerError naming the problem; matchesPattern is a correct glob and stays fast on
// hostile patterns. Method: tables of valid and invalid inputs, edge cases, a timing bound on a
// pattern that made the old regex backtrack for minutes, and a seeded comparison against a naive
// recursive glob.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  checkPattern,
  checkTenant,
  entityTypeOf,
  isEntityName,
  matchesAny,
  matchesPattern,
  parseEntityName,
} from './entity-name.ts'
import { LedgerError } from './errors.ts'
import {
  ENTITY_NAME_LENGTH_MAX,
  ENTITY_TYPE_LENGTH_MAX,
  PATTERN_LENGTH_MAX,
  TENANT_LENGTH_MAX,
} from './limits.ts'

function ledgerError(fn: () => unknown): LedgerError {
  try {
    fn()
  } catch (error) {
    if (error instanceof LedgerError) return error
    throw new Error(`expected a LedgerError, got ${String(error)}`)
  }
  throw new Error('expected a LedgerError, nothing was thrown')
}

describe('parseEntityName', () => {
  it('splits valid names into type and id', () => {
    expect(parseEntityName('stock/s7:espresso-1kg')).toEqual({
      type: 'stock',
      id: 's7:espresso-1kg',
    })
    expect(parseEntityName('order/s7-r1-0042')).toEqual({ type: 'order', id: 's7-r1-0042' })
    expect(parseEntityName('gift_card/A.b~c@d+e')).toEqual({ type: 'gift_card', id: 'A.b~c@d+e' })
    expect(entityTypeOf('till-day/2024-05-01')).toBe('till-day')
  })

  it.each([
    [42, 'must be a string'],
    ['', '1..256'],
    ['noslash', "'type/id' with one slash"],
    ['a/b/c', 'with one slash'],
    ['Stock/x', "entity type 'Stock'"],
    ['1stock/x', "entity type '1stock'"],
    ['/x', "entity type ''"],
    ['stock/', "entity id ''"],
    ['stock/has space', "entity id 'has space'"],
    ['stock/é', "entity id 'é'"],
    ['stock/a*', "entity id 'a*'"],
    [`${'t'.repeat(ENTITY_TYPE_LENGTH_MAX + 1)}/x`, 'at most 32'],
    [`stock/${'x'.repeat(ENTITY_NAME_LENGTH_MAX)}`, 'got 262'],
  ])('refuses %j with invalid_entity', (name, message) => {
    const error = ledgerError(() => parseEntityName(name))
    expect(error.kind).toBe('invalid_entity')
    expect(error.message).toContain(message)
    expect(isEntityName(name)).toBe(false)
  })

  it('accepts names at the length limits', () => {
    const type = 't'.repeat(ENTITY_TYPE_LENGTH_MAX)
    const longest = `${type}/${'x'.repeat(ENTITY_NAME_LENGTH_MAX - type.length - 1)}`
    expect(longest.length).toBe(ENTITY_NAME_LENGTH_MAX)
    expect(isEntityName(longest)).toBe(true)
  })
})

describe('checkTenant', () => {
  it('returns valid tenants', () => {
    expect(checkTenant('acme-coffee')).toBe('acme-coffee')
    expect(checkTenant('A.b_c-9')).toBe('A.b_c-9')
    expect(checkTenant('t'.repeat(TENANT_LENGTH_MAX))).toHaveLength(TENANT_LENGTH_MAX)
  })

  it.each([[''], [null], [7], ['t'.repeat(TENANT_LENGTH_MAX + 1)], ['a/b'], ['a b'], ['a:b']])(
    'refuses %j with invalid_tenant',
    (tenant) => {
      const error = ledgerError(() => checkTenant(tenant))
      expect(error.kind).toBe('invalid_tenant')
      expect(error.message).toMatch(/tenant/)
    },
  )
})

describe('checkPattern', () => {
  it('returns valid patterns', () => {
    for (const p of ['*', 'order/*', 'stock/s7:*', '*/x', 'a**b', 'order/s7-r1-0042']) {
      expect(checkPattern(p)).toBe(p)
    }
  })

  it.each([
    [''],
    [undefined],
    ['x'.repeat(PATTERN_LENGTH_MAX + 1)],
    ['order/?'],
    ['a b'],
    ['[ab]'],
  ])('refuses %j with invalid_pattern', (pattern) => {
    const error = ledgerError(() => checkPattern(pattern))
    expect(error.kind).toBe('invalid_pattern')
    expect(error.message).toMatch(/pattern/)
  })
})

describe('matchesPattern', () => {
  it.each([
    ['*', 'order/1', true],
    ['order/*', 'order/s7-r1-0042', true],
    ['order/*', 'orders/1', false],
    ['order/*', 'order/', true],
    ['order*', 'orders/1', true],
    ['stock/s7:*', 'stock/s7:espresso-1kg', true],
    ['stock/s7:*', 'stock/s8:espresso-1kg', false],
    ['*/42', 'order/42', true],
    ['*/42', 'order/420', false],
    ['a*b*c', 'a/xbyc', true],
    ['a*b*c', 'a/xbyb', false],
    ['a**b', 'ab', true],
    ['order/1', 'order/1', true],
    ['order/1', 'order/10', false],
    // `.` and `+` are literal characters, not regular expression syntax.
    ['stock/a.b', 'stock/aXb', false],
    ['stock/a+', 'stock/aa', false],
    ['stock/a+', 'stock/a+', true],
  ])('%s against %s is %s', (pattern, entity, expected) => {
    expect(matchesPattern(pattern, entity)).toBe(expected)
  })

  it('refuses an invalid pattern with invalid_pattern', () => {
    expect(ledgerError(() => matchesPattern('a b', 'order/1')).kind).toBe('invalid_pattern')
  })

  it('matchesAny is true when one pattern matches', () => {
    expect(matchesAny(['stock/*', 'order/*'], 'order/1')).toBe(true)
    expect(matchesAny(['stock/*'], 'order/1')).toBe(false)
    expect(matchesAny([], 'order/1')).toBe(false)
  })

  it('stays fast on a pattern that makes backtracking regular expressions explode', () => {
    // `*a*a…*b` against `x/aaaa…`: a backtracking matcher takes O(n^k) steps; this took minutes.
    const pattern = `${'*a'.repeat(120)}*b`
    const entity = `x/${'a'.repeat(250)}`
    const start = performance.now()
    expect(matchesPattern(pattern, entity)).toBe(false)
    expect(performance.now() - start).toBeLessThan(200)
  })

  it('agrees with a naive recursive glob on random patterns and names (seed 2024)', () => {
    const naive = (p: string, t: string): boolean => {
      if (p.length === 0) return t.length === 0
      if (p[0] === '*') return naive(p.slice(1), t) || (t.length > 0 && naive(p, t.slice(1)))
      return t.length > 0 && p[0] === t[0] && naive(p.slice(1), t.slice(1))
    }
    const alphabet = fc.constantFrom('a', 'b', '/', '*')
    fc.assert(
      fc.property(
        fc.array(alphabet, { minLength: 1, maxLength: 8 }).map((cs) => cs.join('')),
        fc.array(fc.constantFrom('a', 'b'), { maxLength: 8 }).map((cs) => `a/${cs.join('')}`),
        (pattern, entity) => {
          expect(matchesPattern(pattern, entity)).toBe(naive(pattern, entity))
        },
      ),
      { seed: 2024, numRuns: 1000 },
    )
  })
})
