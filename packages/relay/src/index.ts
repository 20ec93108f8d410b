export * from './log-store.ts'
export * from './limits.ts'
export * from './relay-error.ts'
export * from './sqlite-store.ts'
export { SQLITE_SCHEMA_VERSION } from './sqlite-migrations.ts'
export { decodeEntryBody, encodeEntryBody } from './entry-body.ts'
export { createPostgresStore } from './postgres-store.ts'
export type { PostgresStoreOptions } from './postgres-store.ts'
export * from './auth.ts'
export * from './relay.ts'
export { isOriginAllowed, SYNC_PATH } from './http-routes.ts'
export type { UpgradeRoute, UpgradeRouteContext } from './http-routes.ts'
export * from './yjs-endpoint.ts'
export * from './crdt-snapshots.ts'
export * from './ledger-snapshots.ts'
export { NODE_TIMERS } from './timers.ts'
// The session and the shared tails, for a simulation that runs them over its own sockets.
export { createSession } from './session.ts'
export type { Session, SessionContext, SessionSocket } from './session.ts'
export { createFanoutTails } from './fanout-tail.ts'
export type { FanoutTails } from './fanout-tail.ts'
export { createCommitQueue } from './commit-queue.ts'
export type { CommitQueue } from './commit-queue.ts'
export { createRelayGates } from './relay-gates.ts'
export type { RelayGates } from './relay-gates.ts'
export type { RelayMetrics } from './metrics.ts'
export type { RelayTimers, TimerHandle } from './timers.ts'
export { createHub } from './hub/hub.ts'
export type { Hub, SessionHub, UpstreamOptions } from './hub/hub.ts'
export type { HubStore } from './hub/hub-store.ts'
export { HubError, isHubError } from './hub/hub-error.ts'
export type { HubErrorCode } from './hub/hub-error.ts'
export * from './hub/hub-limits.ts'
// Retention for operators (issue 17): the export and drop `ledgerline-relay retention` runs.
export {
  dropRetention,
  exportRetention,
  readManifest,
  RETENTION_FORMAT,
  RETENTION_MANIFEST,
  RetentionError,
} from './retention-export.ts'
export type {
  RetentionErrorCode,
  RetentionFile,
  RetentionLine,
  RetentionManifest,
} from './retention-export.ts'
