/**
 * Entity types and schemas.
 *
 * An *entity type* says how one kind of ledger folds into state (`reduce`), which invariants the
 * state must keep, how a broken invariant is corrected (`correct`), and which entries are well
 * formed (`validate`). A *schema* is the set of entity types of an app. The same schema module
 * (an ES module whose default export is `defineSchema(…)`) is loaded by the app, which folds its
 * optimistic view with it, and by the relay (`--schema MODULE`), which decides with it.
 *
 * Invariants:
 * 1. `reduce`, `invariants`, `correct` and `validate` are pure and deterministic: the same input
 *    gives the same output on every client and every relay.
 * 2. Entity types are found by the `type` part of the entity name; an unknown type is a
 *    `LedgerError` of kind `unknown_type`, never a silent default.
 * 3. A type name appears once in a schema.
 * 4. Invariant names of one type differ in more than case: they become the lower-cased `rule`
 *    of correction ids, and two rules must never share an id.
 * 5. An entity type that declares `kinds` (see `kinds.ts`) validates every entry's kind and
 *    data before its own `validate`; one without `kinds` is untyped and unchanged.
 * 6. An entity type's fold `version` is a positive integer (default 1). It names the meaning of
 *    `reduce`: states folded by one version are never used as the base of another (clients key
 *    their snapshots by it). Raise it whenever what `reduce` computes changes, also when the
 *    change is in a helper or a constant `reduce` reads (its source text does not change then).
 * 7. `indexes` (optional) name pure functions of a folded view giving a key (a string or a
 *    finite number; anything else leaves the view out of that index). Clients keep them beside
 *    the views for `query`; the relay ignores them. Index names match INDEX_NAME_PATTERN and a
 *    type declares at most INDEXES_PER_TYPE_MAX.
 */
import type { Data, Entry } from './entry.ts'
import { entityTypeOf } from './entity-name.ts'
import { LedgerError } from './errors.ts'
import type { DefineEntitySpec, DefinedEntityType, KindSchemas } from './kinds.ts'
import { checkKindSchemas, validateKind } from './kinds.ts'
import { ENTITY_TYPE_LENGTH_MAX, INDEXES_PER_TYPE_MAX } from './limits.ts'

/** What an index function gives for a view: its key, or `null`/`undefined` to leave it out. */
export type IndexValue = string | number

/** An index of folded views (invariant 7): the key of one view, or none. */
export type IndexOf<S> = (view: S) => IndexValue | null | undefined

/** Names of indexes: a letter, then letters, digits or `_` (64 at most). */
export const INDEX_NAME_PATTERN = /^[A-Za-z][A-Za-z0-9_]{0,63}$/

/** An invariant returns `true` when it holds, or the reason it is broken. */
export type Invariant<S> = (state: S) => true | string

/** One invariant that does not hold. */
export interface Broken {
  readonly rule: string
  readonly reason: string
}

/** What `correct` returns: an entry the server log appends after the offending one. */
export interface CorrectionDraft {
  readonly kind: string
  readonly data: Data
  /** The broken rule this correction answers; defaults to the first broken rule. */
  readonly rule?: string | undefined
  /**
   * Another entity of the same tenant to append the correction to (an order's
   * `order.balance_due` after its payment is declined); defaults to the offending entry's.
   */
  readonly entity?: string | undefined
}

/** How a CRDT entity's entries merge; `undefined` for a ledger entity. */
export type CrdtKind = 'yjs' | 'automerge'

// Entry data is shaped by the app; `validate` checks it at runtime, so `reduce` may read it
// without a cast. This is the one place `any` is allowed.
// oxlint-disable-next-line typescript/no-explicit-any
export type AnyData = any

export interface EntityTypeSpec<S, D = AnyData> {
  readonly type: string
  readonly initial: S
  readonly reduce: (state: S, entry: Entry<D>) => S
  readonly invariants?: Readonly<Record<string, Invariant<S>>> | undefined
  readonly correct?:
    | ((state: S, broken: readonly Broken[], entry: Entry<D>) => readonly CorrectionDraft[])
    | undefined
  /** Shape check of an entry before it is appended; `true` or the reason it is refused. */
  readonly validate?: ((entry: Entry<D>) => true | string) | undefined
  readonly crdt?: CrdtKind | undefined
  /**
   * The fold's version (invariant 6): a positive integer, default 1. Raise it when what `reduce`
   * computes changes, so no state folded by the old `reduce` is used as a base of the new one.
   */
  readonly version?: number | undefined
  /**
   * Indexes of the folded view, for the client's `query` (invariant 7), e.g.
   * `{ byDay: (order) => order.day }`. An empty record makes a type listable without keys.
   */
  readonly indexes?: Readonly<Record<string, IndexOf<S>>> | undefined
}

export interface EntityType<S = unknown, D = AnyData> extends EntityTypeSpec<S, D> {
  readonly invariants: Readonly<Record<string, Invariant<S>>>
  /** The declared kinds and their validators (`kinds.ts`); absent on an untyped type. */
  readonly kinds?: KindSchemas | undefined
  readonly version: number
}

export interface Schema<T extends EntityType<AnyData> = EntityType<AnyData>> {
  readonly types: ReadonlyMap<string, EntityType>
  /** The entity type for an entity name, or `undefined` when the schema has none. */
  find(entity: string): EntityType | undefined
  /** The entity type for an entity name; throws `LedgerError('unknown_type')` when missing. */
  typeOf(entity: string): EntityType
  /** Never set: carries the entity types for `EntityTypesOf`, `AppendOf` and friends. */
  readonly '~entityTypes'?: T | undefined
}

/**
 * Declares an entity type. With `kinds`, each kind's data is declared by a Standard Schema
 * validator (valibot, zod, arktype…): `reduce` sees typed data and every entry is validated
 * where it is appended and decided (`kinds.ts`). Without `kinds`, data is unchecked.
 *
 * @example
 * const stock = defineEntity({
 *   type: 'stock',
 *   initial: { onHand: 0 },
 *   kinds: {
 *     'stock.moved': v.object({ qty: v.pipe(v.number(), v.integer()) }),
 *     'stock.oversold': v.object({ short: v.number(), sale: v.string() }),
 *   },
 *   reduce: (s, e) => (e.kind === 'stock.moved' ? { onHand: s.onHand + e.data.qty } : s),
 *   invariants: { nonNegative: (s) => s.onHand >= 0 || 'stock below zero' },
 *   correct: (s, _broken, e) => [{ kind: 'stock.oversold', data: { short: -s.onHand, sale: e.id } }],
 *   version: 2, // reduce changed meaning once since the first release
 * })
 */
export function defineEntity<
  S,
  D = AnyData,
  N extends string = string,
  K extends KindSchemas | undefined = undefined,
>(spec: DefineEntitySpec<S, D, N, K>): DefinedEntityType<S, D, N, K>
export function defineEntity<S, D>(
  spec: EntityTypeSpec<S, D> & { readonly kinds?: KindSchemas | undefined },
): EntityType<S, D> {
  if (typeof spec !== 'object' || spec === null) {
    throw new LedgerError('invalid_entity_type', 'defineEntity needs an object')
  }
  if (
    typeof spec.type !== 'string' ||
    !/^[a-z][a-z0-9_-]*$/.test(spec.type) ||
    spec.type.length > ENTITY_TYPE_LENGTH_MAX
  ) {
    throw new LedgerError(
      'invalid_entity_type',
      `entity type '${String(spec.type)}' must match [a-z][a-z0-9_-]*`,
    )
  }
  if (typeof spec.reduce !== 'function') {
    throw new LedgerError(
      'invalid_entity_type',
      `entity type '${spec.type}' needs a reduce function`,
    )
  }
  const invariants = spec.invariants ?? {}
  if (typeof invariants !== 'object') {
    throw new LedgerError('invalid_entity_type', `invariants of '${spec.type}' must be an object`)
  }
  const rules = new Set<string>()
  for (const [name, check] of Object.entries(invariants)) {
    if (typeof check !== 'function' || !/^[A-Za-z0-9_.-]{1,64}$/.test(name)) {
      throw new LedgerError(
        'invalid_entity_type',
        `invariant '${name}' of '${spec.type}' must be a function with a short name`,
      )
    }
    if (rules.has(name.toLowerCase())) {
      throw new LedgerError(
        'invalid_entity_type',
        `invariant '${name}' of '${spec.type}' differs from another only in case`,
      )
    }
    rules.add(name.toLowerCase())
  }
  if (spec.correct !== undefined && typeof spec.correct !== 'function') {
    throw new LedgerError('invalid_entity_type', `correct of '${spec.type}' must be a function`)
  }
  if (spec.validate !== undefined && typeof spec.validate !== 'function') {
    throw new LedgerError('invalid_entity_type', `validate of '${spec.type}' must be a function`)
  }
  if (spec.crdt !== undefined && spec.crdt !== 'yjs' && spec.crdt !== 'automerge') {
    throw new LedgerError(
      'invalid_entity_type',
      `crdt of '${spec.type}' must be 'yjs' or 'automerge'`,
    )
  }
  const version = spec.version ?? 1
  if (!Number.isSafeInteger(version) || version < 1) {
    throw new LedgerError(
      'invalid_entity_type',
      `version of '${spec.type}' must be a positive integer, got ${String(version)}`,
    )
  }
  checkIndexes(spec.type, spec.indexes)
  if (spec.kinds !== undefined) {
    return Object.freeze({ ...spec, invariants, version, ...typed(spec, spec.kinds) })
  }
  return Object.freeze({ ...spec, invariants, version })
}

/**
 * Gathers entity types into a schema. A schema module default-exports one. Takes
 * `EntityType<AnyData>`: `reduce` makes an entity type invariant in its state, so no narrower
 * type accepts both `EntityType<Stock>` and `EntityType<Order>`.
 *
 * @example
 * export default defineSchema(stock, order)
 */
export function defineSchema<T extends readonly EntityType<AnyData>[]>(
  ...entityTypes: T
): Schema<T[number]> {
  const types = new Map<string, EntityType>()
  for (const t of entityTypes) {
    if (
      typeof t !== 'object' ||
      t === null ||
      typeof t.type !== 'string' ||
      typeof t.reduce !== 'function'
    ) {
      throw new LedgerError(
        'invalid_entity_type',
        'defineSchema takes entity types made by defineEntity',
      )
    }
    if (types.has(t.type)) {
      throw new LedgerError('invalid_entity_type', `entity type '${t.type}' is defined twice`)
    }
    types.set(t.type, t as unknown as EntityType)
  }
  return Object.freeze({
    types,
    find: (entity: string) => types.get(entityTypeOf(entity)),
    // `typeOf` throws for a malformed name (invalid_entity) and for an unknown type.
    typeOf: (entity: string) => {
      const t = types.get(entityTypeOf(entity))
      if (t === undefined) {
        throw new LedgerError(
          'unknown_type',
          `schema has no entity type '${entityTypeOf(entity)}' (entity '${entity}')`,
        )
      }
      return t
    },
  })
}

/** Invariant 7: index names and functions. */
function checkIndexes(type: string, indexes: unknown): void {
  if (indexes === undefined) return
  if (typeof indexes !== 'object' || indexes === null || Array.isArray(indexes)) {
    throw new LedgerError('invalid_entity_type', `indexes of '${type}' must be an object`)
  }
  const names = Object.keys(indexes)
  if (names.length > INDEXES_PER_TYPE_MAX) {
    throw new LedgerError(
      'invalid_entity_type',
      `'${type}' declares ${names.length} indexes; at most ${INDEXES_PER_TYPE_MAX} are allowed`,
    )
  }
  for (const name of names) {
    if (
      !INDEX_NAME_PATTERN.test(name) ||
      typeof (indexes as Record<string, unknown>)[name] !== 'function'
    ) {
      throw new LedgerError(
        'invalid_entity_type',
        `index '${name}' of '${type}' must be a function under a name matching ${String(INDEX_NAME_PATTERN)}`,
      )
    }
  }
}

/** Invariant 5: the checked kinds, and a `validate` that runs them before the spec's own. */
function typed<S, D>(
  spec: EntityTypeSpec<S, D>,
  declared: unknown,
): Pick<EntityType<S, D>, 'kinds' | 'validate'> {
  const kinds = checkKindSchemas(spec.type, declared)
  const own = spec.validate
  const type = { type: spec.type, kinds }
  return {
    kinds,
    validate: (entry) => {
      const verdict = validateKind(type, entry.kind, entry.data)
      return verdict === true && own !== undefined ? own(entry) : verdict
    },
  }
}

/**
 * Checks that `value` is an entity type made by `defineEntity` and returns it.
 *
 * @example
 * checkEntityType(stock) // stock
 */
export function checkEntityType<S>(value: EntityType<S>): EntityType<S> {
  if (
    typeof value !== 'object' ||
    value === null ||
    typeof value.type !== 'string' ||
    typeof value.reduce !== 'function' ||
    typeof value.invariants !== 'object' ||
    value.invariants === null
  ) {
    throw new LedgerError('invalid_entity_type', 'expected an entity type made by defineEntity')
  }
  return value
}

/**
 * True when `value` looks like a schema made by `defineSchema` (for loading schema modules).
 *
 * @example
 * isSchema((await import('./schema.js')).default) // true
 */
export function isSchema(value: unknown): value is Schema {
  return (
    typeof value === 'object' &&
    value !== null &&
    (value as Schema).types instanceof Map &&
    typeof (value as Schema).typeOf === 'function'
  )
}

/**
 * The fold key of an entity type: its name and fold `version` (invariant 6). A state folded
 * under one key is never the base of a fold under another: client snapshots and the relay's
 * ledger snapshots are both keyed by it.
 *
 * @example
 * foldKey(stock) // 'stock@1'
 */
export function foldKey(type: Pick<EntityType<never>, 'type' | 'version'>): string {
  return `${type.type}@${type.version}`
}
