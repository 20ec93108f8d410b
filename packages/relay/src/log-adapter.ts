/**
 * What the relay asks of the server log beyond appending and reading, in one place: the record
 * of a client (its high-water mark and the token subject bound to it), the log's identity, the
 * items the relay hands to `append` (with the pusher's subject and grants), and how the log says
 * that a clientId belongs to another subject. The sessions, the y-websocket endpoint and the CLI
 * reach the log's newer methods only through these functions, so a store that lacks one of them
 * (an older build) degrades in one place: no subject is bound, the identity is `UNIDENTIFIED_LOG`.
 *
 * Invariants:
 * 1. `clientRecord` never binds anything: it only reads (the log binds a clientId to a subject in
 *    the append transaction of the clientId's first entry).
 * 2. `appendItem` carries the subject and grants of the token the entries were pushed under; the
 *    log checks `corrects` against those grants and binds the subject.
 * 3. `isClientTaken` is true for every form in which the log reports a clientId bound to another
 *    subject (a rejected call or a refused result); nothing of such a call is recorded.
 */
import type { Entry } from '@ledgerline/core'
import type { AckResult, Grants, LogIdentity } from '@ledgerline/protocol'
import type { AppendItem, LogStore } from './log-store.ts'

/** What the log knows of a clientId of a tenant. */
export interface ClientRecord {
  /** Highest clientSeq decided; 0 when none. */
  readonly high: number
  /** The token subject bound to the clientId; null while it appended nothing. */
  readonly subject: string | null
}

/** The identity a relay advertises for a log that has none (a store without `identity()`). */
export const UNIDENTIFIED_LOG: LogIdentity = { id: 'unidentified-log-0000000000', generation: 1 }

/** The kind (of a `LogStoreError`) or refusal code with which the log says "client taken". */
export const CLIENT_TAKEN = 'client_taken'

/**
 * @example
 * await clientRecord(store, 'acme', clientId) // { high: 4, subject: 'till-1' }
 */
export async function clientRecord(
  store: LogStore,
  tenant: string,
  clientId: string,
): Promise<ClientRecord> {
  const next = store as LogStore & Partial<NextLogStore>
  if (typeof next.client === 'function') return next.client(tenant, clientId)
  return { high: await store.clientHigh(tenant, clientId), subject: null }
}

/**
 * @example
 * await logIdentity(store) // { id: 'Qm5…', generation: 1 }
 */
export async function logIdentity(store: LogStore): Promise<LogIdentity> {
  const next = store as LogStore & Partial<NextLogStore>
  if (typeof next.identity === 'function') return next.identity()
  return UNIDENTIFIED_LOG
}

/**
 * Raises the log's generation (after a restore from a backup); the new identity.
 * Throws when the store cannot (a store without `bumpGeneration()`).
 *
 * @example
 * await bumpGeneration(store) // { id: 'Qm5…', generation: 2 }
 */
export async function bumpGeneration(store: LogStore): Promise<LogIdentity> {
  const next = store as LogStore & Partial<NextLogStore>
  if (typeof next.bumpGeneration !== 'function') {
    throw new Error('this log store cannot bump its generation')
  }
  return next.bumpGeneration()
}

/**
 * The item the relay hands to `append` for one pushed entry (invariant 2).
 *
 * @example
 * appendItem(entry, 'till-1', grants) // { entry, subject: 'till-1', grants }
 */
export function appendItem(
  entry: Entry,
  subject: string,
  grants: Grants,
  refuse?: AppendItem['refuse'],
): AppendItem {
  const item = { entry, subject, grants, ...(refuse === undefined ? {} : { refuse }) }
  return item as AppendItem
}

/**
 * True when the log refused a call or an entry because its clientId is bound to another subject
 * (invariant 3).
 *
 * @example
 * isClientTaken(error) // a LogStoreError of kind 'client_taken'
 */
export function isClientTaken(outcome: unknown): boolean {
  if (typeof outcome !== 'object' || outcome === null) return false
  const o = outcome as { kind?: unknown; status?: unknown; code?: unknown }
  if (o.kind === CLIENT_TAKEN) return true
  return o.status === 'refused' && o.code === CLIENT_TAKEN
}

/** The results of a call, when one of them says the clientId is taken. */
export function clientTakenResult(results: readonly AckResult[]): AckResult | undefined {
  return results.find((r) => isClientTaken(r))
}

/** The log's methods of the edges design that some stores may not have yet. */
interface NextLogStore {
  client(tenant: string, clientId: string): Promise<ClientRecord>
  identity(): Promise<LogIdentity>
  bumpGeneration(): Promise<LogIdentity>
}
