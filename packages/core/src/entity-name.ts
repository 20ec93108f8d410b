/**
 * Entity names, tenants and patterns.
 *
 * Terms: an *entity* is named `type/id` (`order/s7-r1-0042`, `stock/s7:espresso-1kg`); its
 * *type* selects the entity type of the schema. A *tenant* is an isolated namespace. A
 * *pattern* selects entity names for scopes and grants: `*` matches any run of characters,
 * everything else matches itself (`order/*`, `stock/s7:*`, `*`).
 *
 * Invariants:
 * 1. A valid entity name has exactly one `/`, a type of `[a-z][a-z0-9_-]*` and an id of
 *    `[A-Za-z0-9._:~@+-]+`, within the limits of `limits.ts`.
 * 2. Patterns never match across tenants: tenants are checked apart from patterns.
 */
import { LedgerError } from './errors.ts'
import {
  ENTITY_NAME_LENGTH_MAX,
  ENTITY_TYPE_LENGTH_MAX,
  PATTERN_LENGTH_MAX,
  TENANT_LENGTH_MAX,
} from './limits.ts'

export interface EntityName {
  readonly type: string
  readonly id: string
}

const TYPE_RE = /^[a-z][a-z0-9_-]*$/
const ID_RE = /^[A-Za-z0-9._:~@+-]+$/
const TENANT_RE = /^[A-Za-z0-9._-]+$/
const PATTERN_RE = /^[A-Za-z0-9._:~@+/*-]+$/

/**
 * Splits and checks an entity name.
 *
 * @example
 * parseEntityName('stock/s7:espresso-1kg') // { type: 'stock', id: 's7:espresso-1kg' }
 */
export function parseEntityName(name: unknown): EntityName {
  if (typeof name !== 'string') throw new LedgerError('invalid_entity', 'entity must be a string')
  if (name.length === 0 || name.length > ENTITY_NAME_LENGTH_MAX) {
    throw new LedgerError(
      'invalid_entity',
      `entity must be 1..${ENTITY_NAME_LENGTH_MAX} characters, got ${name.length}`,
    )
  }
  const slash = name.indexOf('/')
  if (slash < 0 || slash !== name.lastIndexOf('/')) {
    throw new LedgerError('invalid_entity', `entity '${name}' must be 'type/id' with one slash`)
  }
  const type = name.slice(0, slash)
  const id = name.slice(slash + 1)
  if (!TYPE_RE.test(type) || type.length > ENTITY_TYPE_LENGTH_MAX) {
    throw new LedgerError(
      'invalid_entity',
      `entity type '${type}' must match [a-z][a-z0-9_-]* and be at most ${ENTITY_TYPE_LENGTH_MAX} characters`,
    )
  }
  if (!ID_RE.test(id)) {
    throw new LedgerError(
      'invalid_entity',
      `entity id '${id}' must be non-empty and use only A-Z a-z 0-9 . _ : ~ @ + -`,
    )
  }
  return { type, id }
}

/** True when `name` is a valid entity name. */
export function isEntityName(name: unknown): name is string {
  try {
    parseEntityName(name)
    return true
  } catch {
    return false
  }
}

/** The type part of a valid entity name. */
export function entityTypeOf(name: string): string {
  return parseEntityName(name).type
}

/**
 * Checks a tenant name and returns it.
 *
 * @example
 * checkTenant('acme-coffee') // 'acme-coffee'
 */
export function checkTenant(tenant: unknown): string {
  if (typeof tenant !== 'string' || tenant.length === 0 || tenant.length > TENANT_LENGTH_MAX) {
    throw new LedgerError(
      'invalid_tenant',
      `tenant must be a string of 1..${TENANT_LENGTH_MAX} characters`,
    )
  }
  if (!TENANT_RE.test(tenant)) {
    throw new LedgerError('invalid_tenant', `tenant '${tenant}' must use only A-Z a-z 0-9 . _ -`)
  }
  return tenant
}

/**
 * Checks an entity pattern and returns it.
 *
 * @example
 * checkPattern('order/*') // 'order/*'
 */
export function checkPattern(pattern: unknown): string {
  if (typeof pattern !== 'string' || pattern.length === 0 || pattern.length > PATTERN_LENGTH_MAX) {
    throw new LedgerError(
      'invalid_pattern',
      `pattern must be a string of 1..${PATTERN_LENGTH_MAX} characters`,
    )
  }
  if (!PATTERN_RE.test(pattern)) {
    throw new LedgerError(
      'invalid_pattern',
      `pattern '${pattern}' has a character not allowed in entity names`,
    )
  }
  return pattern
}

/**
 * True when `entity` matches `pattern` (`*` matches any run of characters, including `/`).
 * Runs in O(pattern × entity) time whatever the pattern: patterns come from clients' scopes,
 * so a backtracking regular expression (exponential on `*a*a*a…b`) is not an option.
 *
 * @example
 * matchesPattern('order/*', 'order/s7-r1-0042') // true
 */
export function matchesPattern(pattern: string, entity: string): boolean {
  checkPattern(pattern)
  if (typeof entity !== 'string') return false
  return globMatch(pattern, entity)
}

/** True when `entity` matches any of `patterns`. */
export function matchesAny(patterns: readonly string[], entity: string): boolean {
  for (const pattern of patterns) if (matchesPattern(pattern, entity)) return true
  return false
}

// Greedy wildcard matching with one backtrack point (the last `*` seen): a later `*` makes
// every earlier choice irrelevant, so the text index only moves forward per star and the
// whole match is bounded by pattern length × text length.
function globMatch(pattern: string, text: string): boolean {
  let p = 0
  let t = 0
  let star = -1
  let resume = 0
  while (t < text.length) {
    if (p < pattern.length && pattern[p] !== '*' && pattern[p] === text[t]) {
      p++
      t++
    } else if (p < pattern.length && pattern[p] === '*') {
      star = p++
      resume = t
    } else if (star >= 0) {
      p = star + 1
      t = ++resume
    } else {
      return false
    }
  }
  while (p < pattern.length && pattern[p] === '*') p++
  return p === pattern.length
}
