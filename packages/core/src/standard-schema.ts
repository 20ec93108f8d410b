/**
 * The Standard Schema interface, version 1 (https://standardschema.dev), as types only.
 *
 * A *validator* is any value with a `~standard` property of this shape: valibot, zod and
 * arktype schemas are, among others. `core` reads only this interface, so it depends on no
 * validation library: the app brings whichever it uses, and the relay runs it from the schema
 * module.
 *
 * Invariants:
 * 1. Types only: this module has no runtime code, so `core` gains no dependency.
 * 2. Structurally equal to the published interface: any conforming library's schema is
 *    assignable to `StandardSchemaV1` without an adapter.
 */

/** A validator: `~standard.validate` checks an unknown value. */
export interface StandardSchemaV1<Input = unknown, Output = Input> {
  readonly '~standard': StandardSchemaProps<Input, Output>
}

export interface StandardSchemaProps<Input = unknown, Output = Input> {
  /** The version of the standard; always 1. */
  readonly version: 1
  /** The library that made the schema, e.g. `valibot`. */
  readonly vendor: string
  /**
   * Checks `value`. May return a promise (an async schema); Ledgerline decides synchronously
   * and refuses those (see `kinds.ts`).
   */
  readonly validate: (
    value: unknown,
    options?: StandardSchemaOptions | undefined,
  ) => StandardSchemaResult<Output> | Promise<StandardSchemaResult<Output>>
  /** Set for type inference only, never at runtime. */
  readonly types?: StandardSchemaTypes<Input, Output> | undefined
}

export interface StandardSchemaOptions {
  readonly libraryOptions?: Record<string, unknown> | undefined
}

export type StandardSchemaResult<Output> =
  | { readonly value: Output; readonly issues?: undefined }
  | { readonly issues: readonly StandardSchemaIssue[] }

export interface StandardSchemaIssue {
  readonly message: string
  readonly path?: readonly (PropertyKey | { readonly key: PropertyKey })[] | undefined
}

export interface StandardSchemaTypes<Input = unknown, Output = Input> {
  readonly input: Input
  readonly output: Output
}

/** The type a validator accepts. */
export type InferInput<V extends StandardSchemaV1> = NonNullable<V['~standard']['types']>['input']

/** The type a validator returns. */
export type InferOutput<V extends StandardSchemaV1> = NonNullable<V['~standard']['types']>['output']
