/**
 * Typed errors of a store hub. Each has a code an operator or a test can act on; none of them
 * loses anything the hub answered `stored` (the store queue is durable before that answer).
 *
 * Invariants:
 * 1. `not_connected` is only thrown before the hub has ever reached head office (it has no log
 *    identity to serve); sessions answer it `overloaded` so registers retry or move on.
 */
export type HubErrorCode =
  | 'not_connected'
  | 'not_head_office'
  | 'closed'
  | 'upstream_token'
  | 'upstream_refused'
  | 'config'

/**
 * @example
 * throw new HubError('not_connected', 'not yet connected to head office')
 */
export class HubError extends Error {
  readonly code: HubErrorCode
  constructor(code: HubErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'HubError'
    this.code = code
  }
}

/**
 * @example
 * isHubError(error, 'not_connected') // true for a hub that never reached head office
 */
export function isHubError(error: unknown, code?: HubErrorCode): error is HubError {
  return error instanceof HubError && (code === undefined || error.code === code)
}
