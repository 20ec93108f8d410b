/**
 * The server log: one interface, three implementations (SQLite and PostgreSQL in
 * `@ledgerline/relay`, `createMemoryLogStore` here), one conformance suite
 * (`runLogStoreContract` in `@ledgerline/testkit`). Every implementation only stores: the
 * decisions are `planGroup` (`append-plan.ts`) and the group commit is `createGroupCommit`
 * (`group-commit.ts`), both of this package.
 *
 * Terms: a *partition* is one physical log; an entity's ledger lives in the partition
 * `partitionOf(tenant, entity, partitions)`. An *offset* is a 1-based, gap-free position in a
 * partition; a *version* is a 1-based, dense position in an entity's ledger. The *high-water
 * mark* of a client is the highest clientSeq the log has decided (appended or refused).
 *
 * Every implementation must guarantee:
 * 1. Atomic batches. `append` decides and writes every item of a call, and the corrections of
 *    each, in one transaction; after a crash either all of it is there or none.
 * 2. Ack only after durable. The promise of `append` resolves only after the transaction is
 *    durable (SQLite WAL with synchronous=FULL; PostgreSQL commit with fsync on).
 * 3. Dense versions: per (tenant, entity), versions are 1, 2, 3… with no gap and no repeat, also
 *    when appends race from several connections or several relays.
 * 4. Gap-free offsets in commit order: per partition, offsets are 1, 2, 3…; a reader that has
 *    seen offset n has seen every offset below n, and no later commit gets a lower offset.
 * 5. Permanent dedupe. An entry whose id was decided before gets its original result back
 *    (`duplicate` with the original positions and corrections, or the original refusal),
 *    forever, not within a window.
 * 6. Gap-free clientSeq. A new entry must have clientSeq = high-water mark + 1 for its client;
 *    otherwise it is refused with code `seq_gap` and nothing is recorded (the client resends in
 *    order). Corrections (clientId `server`) are exempt.
 * 7. Write semantics as `decide()` in `@ledgerline/core`: facts are appended with their
 *    corrections; requests are appended only if `expect` matches and invariants hold, else
 *    refused with the reason and the current version. Refusals are recorded (they use up the
 *    clientSeq) so a resent request is answered the same way: decided once. Corrections are
 *    sized like entries and folded into every ledger they touch before they are written; one
 *    that does not fit or fold becomes one `ledger.correction_failed` on the fact's entity.
 * 8. Appends that arrive together (from many connections) may share one transaction (group
 *    commit), bounded by `GROUP_COMMIT_ENTRIES_MAX`; each call still gets only its own results.
 *    At most `COMMIT_QUEUE_ENTRIES_MAX` entries wait for commit; past it `append` rejects at
 *    once with `LogStoreError('overloaded')` and records nothing.
 * 9. `close()` waits for appends already accepted, then releases the storage; `append` after
 *    it rejects with `LogStoreError('closed')`.
 */
import type { Entry, Schema, StoredEntry } from '@ledgerline/core'
import type { AckResult } from '@ledgerline/protocol'

/** One entry handed to `append`, already checked for shape and tenant by the relay. */
export interface AppendItem {
  readonly entry: Entry
  /**
   * Set when the relay refuses the entry before the log decides it (outside the token's
   * grants). The store records the refusal so the clientSeq is used up and a resend is
   * answered the same way.
   */
  readonly refuse?: { readonly code: 'forbidden'; readonly reason: string } | undefined
}

export interface EntityHead {
  readonly version: number
  /** Offset of the entity's last entry in its partition; 0 when the ledger is empty. */
  readonly offset: number
}

export interface LogStore {
  /** The log's partition count, fixed when the log was created. */
  readonly partitions: number
  /**
   * Decides and appends `items` (all of one tenant) and returns one result per item, in order.
   * Resolves only after the results are durable. Rejects (appending nothing) only on a store
   * failure, a full commit queue or a closed store; business outcomes are results.
   */
  append(tenant: string, items: readonly AppendItem[]): Promise<AckResult[]>
  /**
   * Entries of one partition with offset > `afterOffset`, in offset order, at most `limit`;
   * only those of `tenant`. Returns fewer than `limit` only at the partition's head.
   * `throughOffset` is the highest offset the read passed (so cursors can move past other
   * tenants' entries).
   */
  readPartition(
    tenant: string,
    partition: number,
    afterOffset: number,
    limit: number,
  ): Promise<{ entries: StoredEntry[]; throughOffset: number }>
  /** Entries of one entity with version >= `fromVersion`, in version order, at most `limit`. */
  readEntity(
    tenant: string,
    entity: string,
    fromVersion: number,
    limit: number,
  ): Promise<StoredEntry[]>
  /** The entity's head; `{ version: 0, offset: 0 }` for an entity with no entries. */
  head(tenant: string, entity: string): Promise<EntityHead>
  /** Highest clientSeq decided for `clientId` in `tenant`; 0 when none. */
  clientHigh(tenant: string, clientId: string): Promise<number>
  /** The current last offset of every partition (index = partition). */
  partitionHeads(): Promise<number[]>
  /**
   * Calls `listener` after each durable commit with the partitions it touched. With several
   * relays on one database, commits of other relays are reported too (PostgreSQL: NOTIFY,
   * with polling as the fallback).
   */
  onCommit(listener: (partitions: readonly number[]) => void): () => void
  close(): Promise<void>
}

export interface LogStoreOptions {
  /** Entity types the log decides with; `undefined` makes a plain log (shape and auth only). */
  readonly schema?: Schema | undefined
  /** Partition count for a new log; an existing log keeps its own. */
  readonly partitions?: number | undefined
  /** Clock for `committedAt` and corrections' `occurredAt`; injected by tests. */
  readonly now?: (() => number) | undefined
  /** Most entries per group transaction; defaults to `GROUP_COMMIT_ENTRIES_MAX`. */
  readonly groupCommitEntriesMax?: number | undefined
  /** Most entries waiting for commit; defaults to `COMMIT_QUEUE_ENTRIES_MAX`. */
  readonly commitQueueEntriesMax?: number | undefined
  /**
   * Runs `fn` once the current burst of work is done; the group commit waits this long so the
   * appends of many connections share a transaction. Node stores default to `setImmediate`; a
   * simulation passes its own.
   */
  readonly defer?: ((fn: () => void) => void) | undefined
}
