/**
 * The field checkers of wire-message validation (`validate.ts`): one value at a path, read from
 * a decoded map, checked and returned, or a `ProtocolError` naming the path.
 *
 * Terms: *path* is where a field sits in the message (`push.entries[3].clientSeq`); *fields* is
 * a decoded map whose own properties are read.
 *
 * Invariants:
 * 1. Only own properties are read, so an object whose prototype was tampered with cannot
 *    smuggle in a field; objects must be plain (prototype `Object.prototype` or `null`).
 * 2. The kinds of `validate.ts` invariant 2: `too_large` for a list, a map or a string over its
 *    protocol limit (`tooMany`, `text`), `bad_message` for every other wrong field, including a
 *    check of `core` that fails (`core`).
 */
import type { Data } from '@ledgerline/core'
import { checkPattern, isClientId, LedgerError } from '@ledgerline/core'
import { Encoder } from '@msgpack/msgpack'
import { PARTITIONS_MAX, SCOPE_PATTERNS_MAX } from './limits.ts'
import type { Cursors } from './messages.ts'
import { ProtocolError } from './protocol-error.ts'

export type Fields = Readonly<Record<string, unknown>>

export function oneOf<T extends string>(
  m: Fields,
  key: string,
  path: string,
  values: readonly T[],
): T {
  const value = own(m, key)
  if (!(values as readonly unknown[]).includes(value)) {
    throw bad(`${path}.${key}`, `must be one of ${values.join(', ')}`)
  }
  return value as T
}

export function patterns(value: unknown, path: string, min: number): string[] {
  if (!Array.isArray(value)) throw bad(path, 'must be an array of patterns')
  if (value.length > SCOPE_PATTERNS_MAX) {
    throw tooMany(path, value.length, SCOPE_PATTERNS_MAX, 'SCOPE_PATTERNS_MAX')
  }
  if (value.length < min) throw bad(path, `must have at least ${min} pattern`)
  return value.map((p: unknown, i) => core(`${path}[${i}]`, () => checkPattern(p)))
}

const PARTITION_KEY_RE = /^(?:0|[1-9][0-9]{0,5})$/

export function cursors(value: unknown, path: string): Cursors {
  const c = record(value, path)
  const keys = Object.keys(c)
  if (keys.length > PARTITIONS_MAX)
    throw tooMany(path, keys.length, PARTITIONS_MAX, 'PARTITIONS_MAX')
  const out: Record<number, number> = {}
  for (const key of keys) {
    if (!PARTITION_KEY_RE.test(key) || Number(key) >= PARTITIONS_MAX) {
      throw bad(`${path}.${key}`, `key must be a partition number 0..${PARTITIONS_MAX - 1}`)
    }
    out[Number(key)] = integer(c, key, path, 0, Number.MAX_SAFE_INTEGER)
  }
  return out
}

export function list<T>(
  m: Fields,
  key: string,
  path: string,
  max: number,
  limit: string,
  item: (value: unknown, path: string) => T,
): T[] {
  const value = own(m, key)
  const at = `${path}.${key}`
  if (!Array.isArray(value)) throw bad(at, 'must be an array')
  if (value.length > max) throw tooMany(at, value.length, max, limit)
  return value.map((v: unknown, i) => item(v, `${at}[${i}]`))
}

export function record(value: unknown, path: string): Fields {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw bad(path, 'must be a map')
  }
  const proto = Object.getPrototypeOf(value) as unknown
  if (proto !== Object.prototype && proto !== null) throw bad(path, 'must be a plain map')
  return value as Fields
}

export function own(m: Fields, key: string): unknown {
  return Object.hasOwn(m, key) ? m[key] : undefined
}

export function integer(m: Fields, key: string, path: string, min: number, max: number): number {
  const value = own(m, key)
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw bad(`${path}.${key}`, `must be an integer in ${min}..${max}`)
  }
  return value
}

export function finite(m: Fields, key: string, path: string): number {
  const value = own(m, key)
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw bad(`${path}.${key}`, 'must be a finite number')
  }
  return value
}

export function time(m: Fields, key: string, path: string): number {
  const value = finite(m, key, path)
  if (value < 0) throw bad(`${path}.${key}`, 'must be ms since the epoch, not negative')
  return value
}

export function boolean(m: Fields, key: string, path: string): boolean {
  const value = own(m, key)
  if (typeof value !== 'boolean') throw bad(`${path}.${key}`, 'must be a boolean')
  return value
}

export function text(m: Fields, key: string, path: string, min: number, max: number): string {
  const value = own(m, key)
  if (typeof value !== 'string') throw bad(`${path}.${key}`, 'must be a string')
  if (value.length > max) {
    throw new ProtocolError(
      'too_large',
      `${path}.${key}: is ${value.length} characters, over ${max}`,
    )
  }
  if (value.length < min) throw bad(`${path}.${key}`, `must have at least ${min} character`)
  return value
}

export function anId(value: unknown, path: string): string {
  if (!isClientId(value)) throw bad(path, 'must be 32 lowercase hex digits')
  return value
}

export function clientId(m: Fields, path: string): string {
  const value = own(m, 'clientId')
  if (!isClientId(value)) throw bad(`${path}.clientId`, 'must be 32 lowercase hex digits')
  return value
}

// Runs a check of `core` and turns its LedgerError into a ProtocolError naming the field.
export function core<T>(path: string, check: () => T): T {
  try {
    return check()
  } catch (error) {
    if (error instanceof LedgerError) {
      throw new ProtocolError('bad_message', `${path}: ${error.message}`, { cause: error })
    }
    throw error
  }
}

export function tooMany(path: string, count: number, max: number, limit: string): ProtocolError {
  return new ProtocolError('too_large', `${path}: has ${count} items, over ${limit} (${max})`)
}

export function bad(path: string, message: string): ProtocolError {
  return new ProtocolError('bad_message', `${path}: ${message}`)
}

// One encoder for every size check, read without a copy: `encode()` makes a new Encoder (and its
// buffer) per call, which was a visible cost per entry of every decoded push.
const dataEncoder = new Encoder()

/**
 * The size of an entry's `data` as the wire encodes it, in bytes: the measure of
 * `ENTRY_DATA_BYTES_MAX`, shared by the decoder and the server log (which sizes corrections).
 *
 * @example
 * entryDataBytes({ qty: 1 }) // 6
 */
export function entryDataBytes(data: Data): number {
  return dataEncoder.encodeSharedRef(data).byteLength
}
