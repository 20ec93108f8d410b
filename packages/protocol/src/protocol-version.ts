/**
 * The wire protocol's version. A client says it in `hello`; a relay refuses a version it does
 * not speak with an `error` of kind `unsupported_protocol`.
 *
 * History:
 * - 1: first version (Ledgerline 0.1.0).
 */
export const PROTOCOL_VERSION = 1
/** Oldest client version this build's relay still accepts. */
export const PROTOCOL_VERSION_MIN = 1
