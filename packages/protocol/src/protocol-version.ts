/**
 * The wire protocol's version. A client says it in `hello`; a relay refuses a version it does
 * not speak with an `error` of kind `unsupported_protocol`.
 *
 * History:
 * - 1: first version (Ledgerline 0.1.0).
 * - 2: exactly once at the edges (Ledgerline 0.2.0): `welcome` names the subject, the log's
 *   identity and the relay's limits; ack results gain `id_conflict` and `deferred`, carry
 *   correction references instead of bodies, and come in parts that each fit a frame;
 *   `renew`/`renewed` swap a live session's token; error kind `client_taken`. Version 1 is no
 *   longer accepted: its clients deleted outbox records on a `duplicate` that could name another
 *   entry, which is the bug version 2 exists to close.
 */
export const PROTOCOL_VERSION = 2
/** Oldest client version this build's relay still accepts. */
export const PROTOCOL_VERSION_MIN = 2
