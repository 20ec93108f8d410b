/**
 * Typed, validated kinds: an entity type may declare, for each kind of entry it holds, a
 * Standard Schema validator of the entry's data (`defineEntity({ kinds: { 'stock.moved':
 * v.object({ qty: v.number() }) } })`). The same declaration gives `reduce` typed data (a union
 * discriminated on `kind`) and checks every entry where it is appended (the client's `append`)
 * and decided (the relay's `decide`).
 *
 * Terms: *kinds* is the record from kind name to validator; a *typed* entity type declares
 * kinds, an *untyped* one does not (and behaves exactly as before kinds existed).
 *
 * Invariants:
 * 1. A typed entity type accepts an entry only when its kind is declared and its data passes
 *    the kind's validator; anything else is refused with a reason naming the kind and the path
 *    of the first issues. An untyped entity type accepts every kind.
 * 2. Validation is synchronous: `decide` is. A validator that is async (it returns a promise)
 *    is refused by `defineEntity` when a probe shows it, and any promise it returns later is
 *    a refusal, never awaited, never an unhandled rejection.
 * 3. Validators check, they do not transform: an entry keeps the data it was appended with,
 *    and the relay validates the same bytes the client did. `reduce` therefore sees the
 *    validator's *input* type.
 * 4. A validator that throws is a refusal with the reason, never a crash (guarantee 10).
 * 5. Types only at the edge: this module imports the Standard Schema interface as types, so
 *    `core` depends on no validation library.
 */
import type { Data, Entry } from './entry.ts'
import { checkKind } from './entry.ts'
import { LedgerError } from './errors.ts'
import { KIND_ISSUES_LISTED_MAX, KINDS_PER_TYPE_MAX } from './limits.ts'
import type { Broken, CorrectionDraft, EntityType, EntityTypeSpec, Schema } from './schema.ts'
import type { InferInput, StandardSchemaIssue, StandardSchemaV1 } from './standard-schema.ts'

/** Kind name → validator of the data of entries of that kind. */
export type KindSchemas = Readonly<Record<string, StandardSchemaV1>>

/** The kind `decide` appends when a schema's `correct` rule fails; every type may hold it. */
export type CorrectionFailedEntry = Entry<
  { readonly rules: readonly string[]; readonly reason: string },
  'ledger.correction_failed'
>

/** The entries a typed entity type folds: one member per declared kind, discriminated on `kind`. */
export type EntryOf<K extends KindSchemas> =
  | { [Kind in keyof K & string]: Entry<InferInput<K[Kind]>, Kind> }[keyof K & string]
  | CorrectionFailedEntry

/**
 * What a typed entity type's `correct` returns: a draft of one of its own kinds, typed, or a
 * draft for another entity (`entity` set), whose type checks it when it is decided.
 */
export type CorrectionDraftOf<K extends KindSchemas> =
  | {
      [Kind in keyof K & string]: {
        readonly kind: Kind
        readonly data: InferInput<K[Kind]>
        readonly rule?: string | undefined
        readonly entity?: undefined
      }
    }[keyof K & string]
  | {
      readonly kind: string
      readonly data: Data
      readonly rule?: string | undefined
      readonly entity: string
    }

/**
 * `defineEntity`'s argument. With `kinds`, `reduce`, `correct` and `validate` see the typed
 * entries of the declared kinds; without, `Entry<D>` as before kinds existed.
 */
export interface DefineEntitySpec<
  S,
  D,
  N extends string,
  K extends KindSchemas | undefined,
> extends Omit<EntityTypeSpec<S, D>, 'type' | 'reduce' | 'correct' | 'validate'> {
  readonly type: N
  readonly kinds?: K
  readonly reduce: (state: S, entry: EntryFor<K, D>) => S
  readonly correct?: CorrectFor<S, D, K> | undefined
  /** A check of the whole entry, after its kind's validator passed. */
  readonly validate?: ((entry: EntryFor<K, D>) => true | string) | undefined
}

/** What `defineEntity` returns: a `TypedEntityType` with kinds, an `EntityType` without. */
export type DefinedEntityType<
  S,
  D,
  N extends string,
  K extends KindSchemas | undefined,
> = K extends KindSchemas ? TypedEntityType<N, S, K> : EntityType<S, D>

/** The entries an entity type folds: `EntryOf<K>` when it declares kinds, else `Entry<D>`. */
export type EntryFor<K extends KindSchemas | undefined, D> = K extends KindSchemas
  ? EntryOf<K>
  : Entry<D>

/**
 * The `correct` rule of an entity type: typed drafts when it declares kinds. Conditional as a
 * whole function type, not in its return type alone: a conditional return type would widen the
 * drafts' literal kinds and leave their data unchecked.
 */
export type CorrectFor<S, D, K extends KindSchemas | undefined> = K extends KindSchemas
  ? (state: S, broken: readonly Broken[], entry: EntryOf<K>) => readonly CorrectionDraftOf<K>[]
  : (state: S, broken: readonly Broken[], entry: Entry<D>) => readonly CorrectionDraft[]

/**
 * An entity type that declares kinds. Its name and kinds are kept in the type, so a schema of
 * typed entity types types `append` (`EntityNameOf`, `KindsOf`, `DataOf`).
 */
export interface TypedEntityType<N extends string, S, K extends KindSchemas> extends EntityType<S> {
  readonly type: N
  readonly kinds: K
}

/** The kind names an entity type declares; `string` for an untyped one. */
export type KindsOf<T> = T extends { readonly kinds: infer K extends KindSchemas }
  ? keyof K & string
  : string

/** The data an entry of kind `K` of entity type `T` carries; `Data` for an untyped type. */
export type DataOf<T, K extends string> = T extends { readonly kinds: infer KS extends KindSchemas }
  ? K extends keyof KS
    ? InferInput<KS[K]>
    : never
  : Data

/** The entity types of a schema made by `defineSchema`, as a union. */
export type EntityTypesOf<Sch> = Sch extends Schema<infer T> ? T : never

/** The entity names a schema knows: `stock/${string}` | …; `string` when one type is untyped. */
export type EntityNameOf<Sch> = string extends EntityTypesOf<Sch>['type']
  ? string
  : `${EntityTypesOf<Sch>['type']}/${string}`

/**
 * The entity type of entity name `E` in a schema: the typed type named by `E`'s type part,
 * else the schema's untyped types (kinds and data unchecked at compile time), else `never`.
 */
export type EntityTypeFor<Sch, E extends string> = [
  Extract<EntityTypesOf<Sch>, { readonly type: TypeNameOf<E> }>,
] extends [never]
  ? UntypedOf<EntityTypesOf<Sch>>
  : Extract<EntityTypesOf<Sch>, { readonly type: TypeNameOf<E> }>

/**
 * The signature of a typed `append` over a schema: the entity name picks the type, the type
 * allows its kinds, the kind fixes the data. `O` is the options argument, `R` what it returns.
 *
 * @example
 * declare const append: AppendOf<typeof schema, { intent?: 'fact' | 'request' }, Promise<void>>
 * await append('stock/s1:espresso', 'stock.moved', { qty: -1 })
 */
export type AppendOf<Sch, O, R> = <
  E extends EntityNameOf<Sch>,
  K extends KindsOf<EntityTypeFor<Sch, E>>,
>(
  entity: E,
  kind: K,
  data: DataOf<EntityTypeFor<Sch, E>, K>,
  options?: O,
) => R

/** One draft of `appendMany` over a schema, as a union over its types and kinds. */
export type DraftOf<Sch> = DraftOfType<EntityTypesOf<Sch>>

/**
 * Checks `data` against the validator an entity type declares for `kind` (invariants 1–4).
 * Untyped entity types accept everything. The client calls it before an append, `decide`
 * through the type's `validate`.
 *
 * @example
 * validateKind(stock, 'stock.moved', { qty: -1 }) // true
 * validateKind(stock, 'stock.moved', { qty: '5' }) // "stock.moved data.qty: Invalid type: …"
 */
export function validateKind(
  type: Pick<EntityType, 'type' | 'kinds'>,
  kind: string,
  data: unknown,
): true | string {
  const kinds = type.kinds
  if (kinds === undefined) return true
  if (!Object.hasOwn(kinds, kind)) {
    const declared = Object.keys(kinds)
    return `kind '${kind}' is not declared by entity type '${type.type}' (it declares ${
      declared.length === 0 ? 'none' : declared.join(', ')
    })`
  }
  const validator = kinds[kind] as StandardSchemaV1
  let result: unknown
  try {
    result = validator['~standard'].validate(data)
  } catch (error) {
    return `${kind}: its validator threw: ${error instanceof Error ? error.message : String(error)}`
  }
  if (isThenable(result)) {
    ignoreRejection(result)
    return `${kind}: its validator is async; Ledgerline decides synchronously, use a synchronous schema`
  }
  const issues = (result as { issues?: readonly StandardSchemaIssue[] | undefined }).issues
  if (issues === undefined || issues === null) return true
  return `${kind} ${formatIssues(issues)}`
}

/**
 * Checks a `kinds` record for `defineEntity` and returns a frozen copy; throws
 * `LedgerError('invalid_entity_type')` naming the type and kind that is wrong.
 *
 * @example
 * checkKindSchemas('stock', { 'stock.moved': v.object({ qty: v.number() }) })
 */
export function checkKindSchemas(type: string, kinds: unknown): KindSchemas {
  if (typeof kinds !== 'object' || kinds === null || Array.isArray(kinds)) {
    throw new LedgerError(
      'invalid_entity_type',
      `kinds of '${type}' must be an object of kind → validator`,
    )
  }
  const names = Object.keys(kinds)
  if (names.length > KINDS_PER_TYPE_MAX) {
    throw new LedgerError(
      'invalid_entity_type',
      `'${type}' declares ${names.length} kinds; at most ${KINDS_PER_TYPE_MAX} are allowed`,
    )
  }
  for (const name of names) {
    try {
      checkKind(name)
    } catch (error) {
      throw new LedgerError(
        'invalid_entity_type',
        `kind '${name}' of '${type}': ${error instanceof Error ? error.message : String(error)}`,
      )
    }
    const validator = (kinds as Record<string, unknown>)[name]
    if (!isStandardSchema(validator)) {
      throw new LedgerError(
        'invalid_entity_type',
        `kind '${name}' of '${type}' needs a Standard Schema validator (a valibot, zod or ` +
          `arktype schema: an object with a '~standard' property of version 1)`,
      )
    }
    // Invariant 2: a probe with a value no data schema accepts. Async schemas of valibot
    // answer every call with a promise; zod's only when an async refinement runs, which the
    // check at validation time catches.
    let probe: unknown
    try {
      probe = validator['~standard'].validate(undefined)
    } catch {
      probe = undefined
    }
    if (isThenable(probe)) {
      ignoreRejection(probe)
      throw new LedgerError(
        'invalid_entity_type',
        `kind '${name}' of '${type}' has an async validator; Ledgerline decides synchronously ` +
          `on the client and the relay: use a synchronous schema (e.g. valibot's object, not objectAsync)`,
      )
    }
  }
  return Object.freeze({ ...(kinds as KindSchemas) })
}

/** True when `value` has the Standard Schema v1 `~standard` property. */
export function isStandardSchema(value: unknown): value is StandardSchemaV1 {
  if ((typeof value !== 'object' && typeof value !== 'function') || value === null) return false
  const props = (value as Partial<StandardSchemaV1>)['~standard']
  return (
    typeof props === 'object' &&
    props !== null &&
    props.version === 1 &&
    typeof props.validate === 'function'
  )
}

type TypeNameOf<E extends string> = E extends `${infer N}/${string}` ? N : never

type UntypedOf<T> = T extends { readonly type: infer N extends string }
  ? string extends N
    ? T
    : never
  : never

type UntypedDraft = { readonly entity: string; readonly kind: string; readonly data: Data }

type DraftOfType<T> = T extends {
  readonly type: infer N extends string
  readonly kinds: infer KS extends KindSchemas
}
  ? string extends N
    ? UntypedDraft
    : {
        [Kind in keyof KS & string]: {
          readonly entity: `${N}/${string}`
          readonly kind: Kind
          readonly data: InferInput<KS[Kind]>
        }
      }[keyof KS & string]
  : UntypedDraft

function formatIssues(issues: readonly StandardSchemaIssue[]): string {
  const listed = issues.slice(0, KIND_ISSUES_LISTED_MAX).map((issue) => {
    const path = (issue.path ?? []).map((segment) =>
      typeof segment === 'object' && segment !== null ? segment.key : segment,
    )
    const where = ['data', ...path.map((key) => String(key))].join('.')
    return `${where}: ${typeof issue.message === 'string' ? issue.message : 'invalid'}`
  })
  const more = issues.length - listed.length
  return more > 0 ? `${listed.join('; ')} (and ${more} more)` : listed.join('; ') || 'data: invalid'
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    (typeof value === 'object' || typeof value === 'function') &&
    value !== null &&
    typeof (value as { then?: unknown }).then === 'function'
  )
}

function ignoreRejection(value: PromiseLike<unknown>): void {
  // The promise is dropped (invariant 2); a rejection must not surface as unhandled.
  value.then(undefined, () => undefined)
}
