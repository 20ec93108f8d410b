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
 * mark* of a client is the highest clientSeq the log has used up (appended, refused or
 * deferred). The *digest* of a client entry is `entryDigest` of its content (`@ledgerline/core`);
 * the log keeps it beside the id of every entry, refusal and deferral. The *pusher* of a call is
 * the token subject and grants it acts for (`Pusher`); a clientId is *bound* to the subject
 * whose call first used it. A *deferral* records that an entry could not be decided yet.
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
 * 5. Permanent dedupe by id and content. A client entry whose id was decided before, resent with
 *    the same digest, gets its original result back (`duplicate` with the original positions
 *    and correction references, or the original refusal), forever, not within a window; with
 *    another digest it gets `id_conflict` and nothing is recorded (the log's entry stays as it
 *    is). Entries made by a log (clientId `server`) dedupe by id alone. Across moves: an entry
 *    with an `origin` (moved by restore recovery) that is a copy of an entry the log holds (its
 *    origin itself or another entry carrying it, the same `recoveryDigest`, of a clientId bound
 *    to the same subject or to none) gets `duplicate` with the first landing's positions; it
 *    uses up its clientSeq and records nothing, and a resend of it is answered the same; so
 *    is an original (no `origin`) that arrives after a moved copy of it landed.
 * 6. Gap-free clientSeq. A new entry must have clientSeq = high-water mark + 1 for its client;
 *    otherwise it is refused with code `seq_gap` and nothing is recorded (the client resends in
 *    order). Corrections (clientId `server`) are exempt.
 * 7. Write semantics as `decide()` in `@ledgerline/core`: facts are appended with their
 *    corrections; requests are appended only if `expect` matches and invariants hold, else
 *    refused with the reason and the current version. Refusals are recorded (they use up the
 *    clientSeq) so a resent request is answered the same way: decided once. Corrections are
 *    sized like entries and folded into every ledger they touch before they are written; one
 *    that does not fit or fold becomes one `ledger.correction_failed` on the fact's entity.
 *    A client entry's `corrects` must name an entry of the log whose entity the pusher may
 *    write, else it is refused `invalid` (recorded); an id the log answered as a moved copy
 *    (`duplicate` by origin), or a first id it never took whose moved copy landed, names that
 *    landing (`append-plan.ts` invariant 13).
 * 8. Appends that arrive together (from many connections) may share one transaction (group
 *    commit), bounded by `GROUP_COMMIT_ENTRIES_MAX`; each call still gets only its own results.
 *    At most `COMMIT_QUEUE_ENTRIES_MAX` entries wait for commit; past it `append` rejects at
 *    once with `LogStoreError('overloaded')` and records nothing.
 * 9. `close()` waits for appends already accepted, then releases the storage; `append` after
 *    it rejects with `LogStoreError('closed')`.
 * 10. Deferrals. An entry `decide()` defers (`unknown_type`, `clock_ahead`) uses up its
 *    clientSeq (later entries of the client are not `seq_gap`), is recorded with its digest and
 *    answered `deferred` with a retry hint; a resend with the same digest is decided again from
 *    scratch (appended, refused, or deferred again). A refusal `unknown_type` recorded by an
 *    older Ledgerline is read as a deferral (issue 12 case 7).
 * 11. Devices bound to subjects. The first call that uses a clientId in a tenant binds it to the
 *    call's `pusher.subject` (a forwarded clientId: its subject in `pusher.subjects`), in the
 *    same transaction; an item of a clientId bound to another subject gets `client_taken` and
 *    nothing is recorded (the relay closes a device's session; a hub's gets `id_conflict`). A call
 *    without a pusher is the log's own (snapshots, operator tools, tests): it binds nothing and
 *    is trusted with every grant.
 * 12. Acks carry references. An `appended` or `duplicate` result lists the log's own
 *    corrections of the entry (`isLogCorrection`) as `CorrectionRef`s, only those whose entity
 *    `pusher.grants.read` matches: the store filters, so the session sends results as they are.
 * 13. Identity. A log has an `id` (random, made with the log) and a `generation` (1 at creation,
 *    raised by `bumpGeneration` after a restore); both survive reopening.
 * 14. Ledger snapshots (issue 17) are derived records beside the log, never entries: one per
 *    (tenant, entity, fold key), replaced only by one of a higher version (`putSnapshot` of an
 *    equal or lower version is `stale` and changes nothing); a state that is not `Data` or
 *    encodes to more than `SNAPSHOT_STATE_BYTES_MAX` bytes is not written (`skipped`, nothing
 *    thrown). `snapshot` answers only the fold key asked for; `snapshotsInScope` pages a
 *    tenant's snapshots in a fixed order, each entity at most once per call sequence.
 * 15. A store with a schema that misses an entity's folded state starts the fold from the
 *    entity's snapshot under the type's own fold key (`foldKey`), never another key's, and
 *    reads only the entries after its version.
 */
import type { Entry, Hash, RandomSource, Schema, StoredEntry } from '@ledgerline/core'
import type { AckResult, Grants, LedgerSnapshot, LogIdentity } from '@ledgerline/protocol'

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

/**
 * Who a call acts for: the token subject (it binds the clientIds the call uses, guarantee 11)
 * and the token's grants (`write` bounds what a client's `corrects` may name, `read` which
 * correction references the results carry, guarantee 12).
 */
export interface Pusher {
  readonly subject: string
  readonly grants: Grants
  /**
   * A store hub's forwarded push (`push.subjects`): the token subject each named clientId acts
   * for, as the hub verified it. A clientId named here is bound to and checked against its own
   * subject instead of `subject` (guarantee 11); the others act for `subject`.
   */
  readonly subjects?: Readonly<Record<string, string>> | undefined
}

/**
 * The token subject `clientId` acts for in a call of `pusher` (guarantee 11).
 *
 * @example
 * subjectFor({ subject: 'hub-7', grants, subjects: { [c]: 'till-1' } }, c) // 'till-1'
 */
export function subjectFor(pusher: Pusher, clientId: string): string {
  const named = pusher.subjects
  return named !== undefined && Object.hasOwn(named, clientId)
    ? (named[clientId] as string)
    : pusher.subject
}

/**
 * The result of an item whose clientId is bound to another subject (guarantee 11). Nothing is
 * recorded; it never goes on the wire: the relay answers it with the error `client_taken`.
 */
export interface ClientTakenResult {
  readonly id: string
  readonly status: 'client_taken'
  readonly reason: string
}

/** One result of `append`: a wire result, or `client_taken`. */
export type AppendResult = AckResult | ClientTakenResult

/** What the log knows of a clientId in a tenant. */
export interface ClientRecord {
  /** Highest clientSeq used up; 0 when none. */
  readonly high: number
  /** The token subject the clientId is bound to; `null` while unbound. */
  readonly subject: string | null
}

export interface EntityHead {
  readonly version: number
  /** Offset of the entity's last entry in its partition; 0 when the ledger is empty. */
  readonly offset: number
}

/** What `putSnapshot` did (guarantee 14): an expected outcome, never an error. */
export type SnapshotPut =
  | { readonly _tag: 'written' }
  /** The store holds a snapshot of this entity and key at this version or a later one. */
  | { readonly _tag: 'stale'; readonly kept: number }
  /** The state is not `Data`, or its encoding is over `SNAPSHOT_STATE_BYTES_MAX`. */
  | { readonly _tag: 'skipped'; readonly reason: 'too_large' | 'not_data'; readonly bytes: number }

/** One entity of the log and its version, as `entities` pages them. */
export interface LoggedEntity {
  readonly tenant: string
  readonly entity: string
  readonly version: number
}

/**
 * Where one entity's ledger lies in its partition (`entitySpans`): the offsets of its first
 * entry and of its head, and the head's version.
 */
export interface EntitySpan {
  readonly entity: string
  readonly partition: number
  readonly version: number
  readonly firstOffset: number
  readonly lastOffset: number
}

/** One page of `entitySpans`; `next` (opaque) continues it, `undefined` after the last. */
export interface EntitySpanPage {
  readonly spans: EntitySpan[]
  readonly next: string | undefined
}

/** One page of `snapshotsInScope`; `next` (opaque) continues it, `undefined` after the last. */
export interface SnapshotPage {
  readonly snapshots: LedgerSnapshot[]
  readonly next: string | undefined
}

export interface LogStore {
  /** The log's partition count, fixed when the log was created. */
  readonly partitions: number
  /**
   * Decides and appends `items` (all of one tenant) and returns one result per item, in order.
   * Resolves only after the results are durable. Rejects (appending nothing) only on a store
   * failure, a full commit queue or a closed store; business outcomes are results.
   */
  append(
    tenant: string,
    items: readonly AppendItem[],
    pusher?: Pusher | undefined,
  ): Promise<AppendResult[]>
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
  /**
   * The high-water mark of `clientId` in `tenant` and the subject it is bound to (the relay's
   * `hello` refuses another subject with `client_taken`); `{ high: 0, subject: null }` when the
   * log never saw it.
   */
  client(tenant: string, clientId: string): Promise<ClientRecord>
  /** The log's identity (guarantee 13), as of now (another relay or tool may bump it). */
  identity(): Promise<LogIdentity>
  /**
   * Raises the generation by one and returns the new identity: what an operator does after
   * restoring the log from a backup or replacing it, so clients recover (`welcome.log`).
   */
  bumpGeneration(): Promise<LogIdentity>
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

/**
 * The ledger snapshots a store keeps beside its log (guarantees 14–15). SQLite, PostgreSQL and
 * memory logs have them; a store without them (a store hub's, a wrapper that does not pass them
 * on) makes a relay that offers no bootstrap (`welcome.snapshots` absent).
 */
export interface LedgerSnapshots {
  /**
   * Keeps `snapshot` as the entity's snapshot under its fold key (guarantee 14). The caller
   * (the relay's policy) folded it from the log; the store does not refold it.
   */
  putSnapshot(tenant: string, snapshot: LedgerSnapshot): Promise<SnapshotPut>
  /** The entity's snapshot under `foldKey`, or `undefined`. */
  snapshot(tenant: string, entity: string, foldKey: string): Promise<LedgerSnapshot | undefined>
  /**
   * A page of the tenant's snapshots whose entity matches one of `patterns` and whose fold key
   * is one of `foldKeys`, at most `limit`, continuing after the page `after` ended (`next`).
   */
  snapshotsInScope(
    tenant: string,
    patterns: readonly string[],
    foldKeys: readonly string[],
    after: string | undefined,
    limit: number,
  ): Promise<SnapshotPage>
  /**
   * A page of the tenant's entities whose name matches one of `patterns`, each with its span
   * (`EntitySpan`), at most `limit` a page, in a fixed order, continuing after `after` (`next`):
   * what a bootstrap reads to pass, without reading them, the offsets of a partition that hold
   * no entry it sends (`subscriptions.ts` invariant 6). Every entity the log held when the
   * first page was read comes in one page; a page may hold fewer than `limit` (a store scans at
   * most `limit` entities a call) and still have a `next`.
   */
  entitySpans(
    tenant: string,
    patterns: readonly string[],
    after: string | undefined,
    limit: number,
  ): Promise<EntitySpanPage>
  /**
   * A page of every tenant's entities with their versions, at most `limit`, in a fixed order,
   * continuing after `after` (`next`): for the relay's snapshot pass over a log written before
   * snapshots, and operator tools.
   */
  entities(
    after: string | undefined,
    limit: number,
  ): Promise<{ entities: LoggedEntity[]; next: string | undefined }>
}

/** A log that keeps ledger snapshots. */
export type SnapshotLogStore = LogStore & LedgerSnapshots

/**
 * True when `store` keeps ledger snapshots.
 *
 * @example
 * if (hasLedgerSnapshots(store)) await store.snapshot(tenant, entity, foldKey(type))
 */
export function hasLedgerSnapshots(store: LogStore): store is SnapshotLogStore {
  const s = store as Partial<LedgerSnapshots>
  return (
    typeof s.putSnapshot === 'function' &&
    typeof s.snapshot === 'function' &&
    typeof s.snapshotsInScope === 'function' &&
    typeof s.entitySpans === 'function' &&
    typeof s.entities === 'function'
  )
}

/**
 * The reads and the other calls of `store` a wrapper passes on as they are (all but `append` and
 * `close`, which a wrapper hooks).
 *
 * @example
 * const wrapped = { ...passedThrough(store), partitions: store.partitions, append, close }
 */
export function passedThrough(store: LogStore): Omit<LogStore, 'append' | 'close' | 'partitions'> {
  return {
    readPartition: (...args) => store.readPartition(...args),
    readEntity: (...args) => store.readEntity(...args),
    head: (...args) => store.head(...args),
    client: (...args) => store.client(...args),
    identity: () => store.identity(),
    bumpGeneration: () => store.bumpGeneration(),
    partitionHeads: () => store.partitionHeads(),
    onCommit: (listener) => store.onCommit(listener),
  }
}

/**
 * The ledger snapshot methods of `store`, for a wrapper to pass on (none when it has none).
 *
 * @example
 * const wrapped = { ...ledgerSnapshotsOf(store), append: … }
 */
export function ledgerSnapshotsOf(store: LogStore): Partial<LedgerSnapshots> {
  if (!hasLedgerSnapshots(store)) return {}
  return {
    putSnapshot: (...args) => store.putSnapshot(...args),
    snapshot: (...args) => store.snapshot(...args),
    snapshotsInScope: (...args) => store.snapshotsInScope(...args),
    entitySpans: (...args) => store.entitySpans(...args),
    entities: (...args) => store.entities(...args),
  }
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
  /** SHA-256 for digests; core's by default, a platform's faster one may be passed (Node's). */
  readonly hash?: Hash | undefined
  /** Randomness for a new log's id; the platform's by default. */
  readonly random?: RandomSource | undefined
}
