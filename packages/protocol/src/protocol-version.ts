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
 * - 3: store hubs (Ledgerline 0.2.0): `welcome.role` and `upstream`; `grants.forward`; ack result
 *   `stored`; `store` and `upstream` messages; `push.subjects` for forwarded entries. Head office
 *   still accepts version 2 clients; hubs require 3. Added later without a bump, because a
 *   relay says it speaks them (`welcome.snapshots`) and a client sends them only then:
 *   `subscribe.bootstrap`, `snapshots`, `fetch`/`fetched` (compaction), error kind
 *   `history_dropped`.
 */
export const PROTOCOL_VERSION = 3
/**
 * Oldest client version this build's relay still accepts. Head office accepts version 2 clients
 * (it never sends them what version 3 added); a store hub accepts version 3 only.
 */
export const PROTOCOL_VERSION_MIN = 2
/** Oldest client version a store hub accepts: `stored` and `store` are version 3. */
export const PROTOCOL_VERSION_HUB_MIN = 3
