/**
 * The one error class of `protocol`. `decodeMessage` and `encodeMessage` throw nothing else.
 *
 * Invariants:
 * 1. `kind` is one of the closed set of `error-kind.ts`, so a relay can put it straight into an
 *    `error` message and close with `ERROR_KINDS[kind].closeCode`.
 * 2. `message` names the field at fault (`push.entries[3].clientSeq: …`), for people.
 */
import type { ErrorKind } from './error-kind.ts'

/**
 * A frame or message that is not valid (`bad_message`) or is over a named limit (`too_large`).
 *
 * @example
 * try { decodeMessage(bytes) } catch (e) { if (isProtocolError(e)) sendError(e.kind, e.message) }
 */
export class ProtocolError extends Error {
  readonly kind: ErrorKind
  constructor(kind: ErrorKind, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'ProtocolError'
    this.kind = kind
  }
}

/**
 * True when `value` is a `ProtocolError`.
 *
 * @example
 * isProtocolError(new ProtocolError('too_large', 'frame is 2 MiB')) // true
 */
export function isProtocolError(value: unknown): value is ProtocolError {
  return value instanceof ProtocolError
}
