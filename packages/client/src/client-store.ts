/**
 * The client store: what the client keeps on the device, as one interface with two
 * implementations (`createIdbClientStore` over IndexedDB, `createMemoryClientStore` in memory)
 * and one conformance suite (`runClientStoreContract` in `@ledgerline/testkit`). This file
 * names no platform type, so the simulation and the suite can import it anywhere.
 *
 * Terms (README glossary): the *outbox* holds own entries appended and not yet acknowledged;
 * *acked* records hold own entries acknowledged and not yet received back through the
 * subscription; *pending* is both (own entries not yet part of confirmed state). *Confirmed
 * history* is what the subscription delivered, stored in *chunks* (numbered 1, 2, 3… in the
 * order they were written; a chunk holds entries of one partition). A *snapshot* is an entity's
 * folded state as of a version and a chunk. *Outcomes* are the log's answers to own entries;
 * the *corrections feed* lists the log's corrections of own entries.
 *
 * What every implementation must guarantee (the contract suite checks each one):
 * 1. Every method that writes is atomic: it commits all of its writes or none (a rejected call
 *    wrote nothing), and calls do not see each other's uncommitted writes.
 * 2. `append` allocates clientSeq `seqLast + 1 …` for the current clientId and writes the outbox
 *    records (which carry the entries) in the same atomic write: clientSeq is gap-free and an
 *    entry never exists without its outbox record. It validates each entry before writing it,
 *    and `readOutbox` validates it again after reading it back (pair assertions).
 * 3. The outbox is read in clientSeq order; every record has the current clientId (`reissue`
 *    moves all of them to a new one in one write).
 * 4. An outbox record is deleted only by an ack that decides it (`applyAck`: appended,
 *    duplicate, refused), by its own entry arriving in a page with head office's positions and
 *    the same content digest (`applyPages`: settled as an `appended` ack would, in the same
 *    write), or by `reissue` (which re-adds it under the new id); `seq_gap`, `id_conflict`,
 *    `deferred` and a store hub's `stored` keep it (`stored` marks it, stage `store`).
 * 5. Pages are stored with the cursors after the last of them in one write; entries at or
 *    below the stored cursor are dropped, so no entry is stored twice and the cursor never runs
 *    ahead of what is stored.
 * 6. Cursors, confirmed history and snapshots belong to one (tenant, scope): `prepareCursors`
 *    for another one clears them together.
 * 7. What committed survives a close and a reopen of the same database.
 * 8. After `close`, every call rejects with a `ClientError` of kind `closed`.
 * 9. `beginSession` is one write: a log identity other than the stored one puts this
 *    clientId's entries the log may lack (every one still held in acked records and confirmed
 *    history: above its high-water mark the log lacks them, at or below it it may hold one only
 *    as a deferral), and the entries of earlier clientIds above the marks the welcome gave
 *    for them (moved under the current clientId with their `origin`), back into the outbox
 *    BEFORE confirmed history, snapshots and cursors go, and sets `recovering` with the new
 *    identity, so a crash anywhere leaves either the old
 *    state or the whole new one; `recovering` stays set until `reissue` clears it.
 * 10. Kept views (`views.ts`): for each entity type of the store's schema that declares
 *    `indexes`, one view record per entity with any confirmed or pending entry, changed IN THE
 *    SAME WRITE as those entries (`append`, `applyAck`, `applyPages`, and the writes that drop
 *    history: `prepareCursors`, `beginSession`), so `queryViews` never sees a view that
 *    disagrees with what is stored. `prepareViews` rebuilds, in one write, every type whose
 *    definition key differs from the stored one.
 * 11. Bootstrap (`bases.ts`): a page's `snapshots` are stored as the entities' *bases* in the
 *    page's own write, before its entries, each only when it is not older than the stored base
 *    (a base never moves back). Bootstraps over overlapping names keep one base per name: the
 *    newer of the same fold key by version, or the later of another fold key; an older
 *    bootstrap's base never shadows a newer one, also after a reopen. A base stands for the
 *    entity's history through its version: a load from version 1 (`base` null) starts from it
 *    when its fold key matches, and a load after a cached base older than it starts from it
 *    too. Bases go with confirmed history
 *    (guarantee 6, and `beginSession` on another log). `storeFetched` keeps fetched history
 *    below a base as confirmed history in one write (never an entry twice), with the version
 *    below which the operator dropped it.
 * 12. `CursorsRecord.bootstrap` is set when cursors start from nothing and cleared by the write
 *    of a page marked `live`: the flag the sync loop reads to ask for a bootstrap again. The
 *    record also lists the fold keys of the bases it stored (`baseKeys`), in the same write.
 */
import type { Entry, IndexValue, Schema, StoredEntry } from '@ledgerline/core'
import type {
  AckResult,
  ClientSeqHigh,
  Cursors,
  LedgerSnapshot,
  LogIdentity,
} from '@ledgerline/protocol'
import type { Scheduler } from './scheduler.ts'
import type { ViewRecord } from './views.ts'

/** One end of a range over an index. */
export interface RangeEnd {
  readonly value: IndexValue
  /** Excludes `value` itself. */
  readonly open: boolean
}

/** What `queryViews` reads (guarantee 10); `query-plan.ts` makes it from the app's query. */
export interface ViewQuery {
  readonly type: string
  /** The index to range over; undefined: every record of the type, by entity name. */
  readonly index?: string | undefined
  readonly lower?: RangeEnd | undefined
  readonly upper?: RangeEnd | undefined
  readonly direction: 'asc' | 'desc'
  /** Most records answered. */
  readonly limit: number
  /** Entities must pass it (a pattern narrower than `type/*`); undefined: all do. */
  readonly match?: ((entity: string) => boolean) | undefined
}

/** What `outcome(entryId)` tells about one of this client's entries. */
export type Outcome =
  /**
   * The entry waits in the outbox: head office has not answered yet. `stage`: `device` (only
   * here), or `store` (a store hub said it holds the entry durably; the record stays until head
   * office's own result arrives, as the hub may be lost with its disk).
   */
  | { readonly _tag: 'outbox'; readonly stage: 'device' | 'store' }
  | {
      readonly _tag: 'appended' | 'duplicate'
      readonly version: number
      readonly partition: number
      readonly offset: number
      /** When the log committed it; 0 when only the acked record is left to tell. */
      readonly committedAt: number
    }
  | {
      readonly _tag: 'refused'
      readonly code: string
      readonly reason: string
      /** The entity's version when it was refused (to rebase a request). */
      readonly head: number
    }
  /** The entry was re-sent under a new id after the database was found restored or copied. */
  | { readonly _tag: 'reissued'; readonly as: string }
  /** This database knows nothing of the id. */
  | { readonly _tag: 'unknown' }

export interface ClientMeta {
  readonly clientId: string
  /** Highest clientSeq allocated under `clientId`. */
  readonly seqLast: number
  /** Every clientId this database has used (to recognise corrections of own entries). */
  readonly clientIds: readonly string[]
  /** The tenant of this database's entries (the option, or the first welcome); null: unknown. */
  readonly tenant: string | null
  /**
   * 128 random bits (hex) made with the database. Restore recovery derives new clientIds from
   * it, the old clientId and the log's high-water mark, so restoring the same copy twice
   * derives the same ids (and the second restore dedupes to nothing).
   */
  readonly deviceSecret: string
  /** A restored database or a changed log was found: the next welcome recovers (crash-safe). */
  readonly recovering: boolean
  /** The server log this database last synced with; null before its first welcome. */
  readonly log: LogIdentity | null
  readonly createdAt: number
  readonly outboxEntries: number
  readonly outboxBytes: number
  readonly correctionsUnseen: number
  /** Counter ordering outcomes and feed records. */
  readonly n: number
  /** Outbox records a store hub holds (`OutboxRecord.stored`); absent in older records: 0. */
  readonly storedEntries?: number | undefined
}

export interface CursorsRecord {
  readonly tenant: string
  readonly scopeKey: string
  readonly cursors: Cursors
  /** Number of the last chunk stored (0: none). */
  readonly chunkLast: number
  /** (entity, chunk) keys in the staged records. */
  readonly stagedKeys: number
  /**
   * The cursors started from nothing and no `live` page was stored since (guarantee 12): a
   * relay that keeps snapshots is asked for a bootstrap. Absent in older records: false.
   */
  readonly bootstrap?: boolean | undefined
  /** The fold keys of the bases stored (guarantee 11), each once. Absent: none. */
  readonly baseKeys?: readonly string[] | undefined
}

/** What `bootstrapState` reads from the cursors record. */
export interface BootstrapState {
  readonly pending: boolean
  readonly baseKeys: readonly string[]
}

export interface OutboxRecord {
  readonly clientId: string
  readonly clientSeq: number
  readonly id: string
  readonly entity: string
  readonly entry: Entry
  /** Encoded size on the wire. */
  readonly bytes: number
  /** Local time of the append, ms since the epoch. */
  readonly at: number
  /**
   * A store hub answered `stored`: durable in the store, not at head office yet (stage
   * `store`). The record stays until head office's result (`plans-hub.ts`).
   */
  readonly stored?: true | undefined
}

export interface AckedRecord {
  readonly id: string
  readonly entity: string
  readonly entry: Entry
  readonly version: number
  readonly partition: number
  readonly offset: number
}

export interface ChunkRecord {
  readonly n: number
  readonly partition: number
  readonly first: number
  readonly last: number
  /** In offset order. */
  readonly entries: readonly StoredEntry[]
}

export interface StagedRecord {
  /** Number of the last chunk it lists. */
  readonly n: number
  /** Each entity with the chunks (ascending) holding its entries. */
  readonly entities: readonly (readonly [string, readonly number[]])[]
  /** Count of (entity, chunk) keys, for the bound on staged keys. */
  readonly keys: number
}

export interface SnapshotRecord {
  readonly entity: string
  readonly version: number
  readonly state: unknown
  /** The last chunk folded into `state`. */
  readonly through: number
  /**
   * The entity type and its fold `version` (`defineEntity({ version })`): a snapshot is used
   * only by the same type key.
   */
  readonly typeKey: string
  /** A hash of `reduce`'s source text, kept only to warn when it changed but the version did not. */
  readonly source?: string | undefined
}

/**
 * A relay's ledger snapshot kept as an entity's confirmed base (guarantee 11): its state
 * through `version`, folded by the reduce `foldKey` names. History at or below `version` is on
 * the server only, except what `storeFetched` brought.
 */
export interface BaseRecord extends Omit<LedgerSnapshot, 'state'> {
  readonly state: unknown
  /** A fetch found history below this version dropped by the operator (retention). */
  readonly dropped?: number | undefined
}

/** One entity's ledger as stored (`loadHistory`): its base, if any, and every entry held. */
export interface EntityHistory {
  readonly base: BaseRecord | undefined
  /** Every confirmed entry stored, in version order (below a base too, when fetched). */
  readonly stored: readonly StoredEntry[]
  /** Own pending entries (acked ones, then the outbox's), in no promised order. */
  readonly pending: readonly Entry[]
  readonly acked: ReadonlySet<string>
}

export interface OutcomeRecord {
  readonly id: string
  readonly n: number
  readonly outcome: Outcome
}

export interface FeedRecord {
  readonly id: string
  readonly n: number
  /** The correction, as the server log stored it. */
  readonly entry: StoredEntry
  /** Id of this client's entry it compensates for. */
  readonly of: string
  readonly unseen: boolean
}

/** A draft the client turns into entries inside the append write. */
export type MakeEntries = (clientId: string, firstSeq: number) => readonly Entry[]

export interface AppendLimits {
  readonly entriesMax: number
  readonly bytesMax: number
}

export interface AckItem {
  readonly record: OutboxRecord
  readonly result: AckResult
}

export interface AckApplied {
  /** Entities of decided entries and of the corrections the log appended after them. */
  readonly entities: ReadonlySet<string>
  /**
   * Those of them whose shown state changed: an entry pending no more (refused, not kept as
   * acked) or a correction named. An entry kept as an acked record is pending as before.
   */
  readonly changed: ReadonlySet<string>
  /** Entries that stay in the outbox (refused with `seq_gap`: resend in order). */
  readonly gaps: number
  readonly settled: ReadonlyMap<string, Outcome>
}

/** One received `entries` page, or a bootstrap's `snapshots` page (entries then empty). */
export interface PageIn {
  readonly entries: readonly StoredEntry[]
  /** The relay's cursors after this page. */
  readonly cursors: Cursors
  /** Snapshots to keep as bases (guarantee 11), stored before this page's entries. */
  readonly snapshots?: readonly LedgerSnapshot[] | undefined
  /** The relay marked the page `live`: catch-up is done (guarantee 12). */
  readonly live?: boolean | undefined
}

export interface PageApplied {
  readonly entities: ReadonlySet<string>
  readonly corrections: readonly FeedRecord[]
  /** Entities whose base this write set (guarantee 11); also in `entities`. */
  readonly based: ReadonlySet<string>
  /** Entries stored (after dropping those at or below the cursor). */
  readonly stored: number
  /** This client's own entries among them (their `acked` or outbox records were deleted). */
  readonly own: number
  /** Ids of those own entries. */
  readonly ownReceived: readonly string[]
  /** The chunks this write stored (the entries it stored, by partition). */
  readonly chunks: readonly ChunkRecord[]
  /**
   * Outbox records the pages settled: own entries a store hub had answered `stored` (or whose
   * ack was lost) that came back with head office's positions, as an `appended` ack would.
   */
  readonly settled: ReadonlyMap<string, Outcome>
  readonly cursors: Cursors
  /** (entity, chunk) keys staged and not yet in the ledger index, this write included. */
  readonly stagedKeys: number
}

/** A folded state and where it stops: version, and the last chunk folded into it. */
export interface EntityBase {
  readonly through: number
  readonly version: number
  readonly state: unknown
}

export interface EntityLoad {
  readonly snapshot: EntityBase | undefined
  /** The `source` the stored snapshot was written with, when it was used. */
  readonly snapshotSource: string | undefined
  /** Confirmed entries after the snapshot (or from version 1), in version order. */
  readonly stored: readonly StoredEntry[]
  /** The last chunk read, if any. */
  readonly lastChunk: number | undefined
  /** Own pending entries (acked ones, then the outbox's), in no promised order. */
  readonly pending: readonly Entry[]
  readonly acked: ReadonlySet<string>
}

export interface Counters {
  readonly clientId: string
  /** Every clientId this database has used, in the order it took them (the current one last). */
  readonly clientIds: readonly string[]
  readonly seqLast: number
  readonly outboxEntries: number
  readonly outboxBytes: number
  /** Local time of the oldest outbox record; `null` when the outbox is empty. */
  readonly oldestOutboxAt: number | null
  readonly correctionsUnseen: number
  /** Acked records still waiting to be received back. */
  readonly ackedWaiting: number
  /** Of the outbox entries, those a store hub holds (stage `store`). */
  readonly storedEntries: number
}

/** What one `append` wrote: the entries and the meta record. */
export interface Appended {
  readonly entries: readonly Entry[]
  readonly bytes: number
  /** The meta record as this write left it (counters exact as of its commit). */
  readonly meta: ClientMeta
  /** The outbox was empty before this append (so its entries are the oldest in it). */
  readonly wasEmpty: boolean
  /** The loads `append` was asked for, read in its write after the entries (so with them). */
  readonly loads: ReadonlyMap<string, EntityLoad>
}

/** An entity whose load an append reads in its own write: its name and snapshot type key. */
export interface LoadWanted {
  readonly entity: string
  readonly typeKey: string
}

/** What the sync loop knows when a session is welcomed. */
export interface SessionStart {
  /** The clientId the hello said (the welcome's high-water mark is this id's). */
  readonly clientId: string
  readonly tenant: string
  readonly log: LogIdentity
  /** The welcome's `clientSeqHigh`. */
  readonly high: number
  /** The welcome's marks of this database's earlier clientIds (`clientSeqHighs`). */
  readonly older?: readonly ClientSeqHigh[] | undefined
}

/** What `beginSession` found and did. */
export type SessionBegun =
  /** The clientId changed since the hello (another tab reissued): say hello again. */
  | { readonly _tag: 'stale' }
  | {
      readonly _tag: 'begun'
      /** Restore recovery runs on this session. */
      readonly recovering: boolean
      /** The log's identity changed: confirmed history, snapshots and cursors were dropped. */
      readonly logChanged: boolean
      /** Own entries put back into the outbox because the log lacks them. */
      readonly putBack: number
      readonly meta: ClientMeta
    }

/** Why a client store closed itself: a newer version wants the database, or it failed. */
export type ClientStoreClosedReason = 'versionchange' | 'terminated'

export interface ClientStore {
  /**
   * Reads the meta record, creating it (a new clientId and device secret, each from `newId`)
   * when the database is new or wiped, and filling what an older layout's record lacks.
   * `tenant` is recorded when the database has none yet.
   */
  init(
    newId: () => string,
    now: number,
    tenant?: string | undefined,
  ): Promise<{ meta: ClientMeta; created: boolean }>
  /**
   * Allocates clientSeq and writes the entries `make` returns with their outbox records
   * (guarantee 2). Fails with `outbox_full` past `limits`, and with whatever `make` or
   * `bytesOf` throws; nothing is written then. `loads` are read in the same write, after the
   * entries, as `loadEntity(entity, typeKey)` would read them then: an append that primes
   * entities nothing had loaded costs one transaction, not two.
   */
  append(
    make: MakeEntries,
    limits: AppendLimits,
    now: number,
    bytesOf: (e: Entry) => number,
    loads?: readonly LoadWanted[],
  ): Promise<Appended>
  /**
   * Outbox records after `after` ([clientId, clientSeq]; from the start when undefined), at most
   * `entriesMax` of them and `bytesMax` bytes (the first record always, whatever its size).
   */
  readOutbox(
    after: readonly [string, number] | undefined,
    entriesMax: number,
    bytesMax: number,
  ): Promise<OutboxRecord[]>
  /**
   * Applies acks in one write: outbox records deleted, outcomes recorded, acked records kept
   * for entities `keepAcked` accepts (unless the stored cursor already passed the entry),
   * corrections added to the feed, counters updated. An ack of a record already gone is
   * ignored. `lean` (used after a `storage_full` failure) only deletes the acked outbox records
   * and rewrites the meta record, so a full disk never stops the outbox from draining; outcomes
   * and acked records are then not kept.
   */
  applyAck(
    items: readonly AckItem[],
    keepAcked: (entity: string) => boolean,
    lean?: boolean,
  ): Promise<AckApplied>
  /**
   * The stored cursors for (tenant, scope). For another (tenant, scope) than the stored one it
   * clears confirmed history and snapshots, drops acked records outside the scope, and answers
   * `{}` (guarantee 6).
   */
  prepareCursors(
    tenant: string,
    scopeKey: string,
    inScope: (entity: string) => boolean,
  ): Promise<Cursors>
  /**
   * The stored cursors' `bootstrap` flag (guarantee 12; false when none are stored) and the
   * fold keys of the bases stored with them (guarantee 11).
   */
  bootstrapState(): Promise<BootstrapState>
  /**
   * Stores pages received back to back, in arrival order, in ONE write with the cursors after
   * the last of them (guarantee 5). Own entries among them delete their acked records; the
   * log's corrections of own entries join the feed once. Fails with kind `closed` if the scope
   * changed.
   */
  applyPages(pages: readonly PageIn[], scopeKey: string): Promise<PageApplied>
  /**
   * Moves staged ledger keys into the per-entity index, one write; false when nothing was
   * staged. Loads answer the same before and after.
   */
  indexPending(): Promise<boolean>
  /**
   * Reads what folding `entity` needs. `base` undefined: start from the stored snapshot (if its
   * `typeKey` matches); a base: start after it (what the cache already folded); `null`: from
   * version 1.
   */
  loadEntity(entity: string, typeKey: string, base?: EntityBase | null): Promise<EntityLoad>
  /**
   * Every stored confirmed entry of `entity` with its base (guarantee 11) and pending entries:
   * what `client.history` lists. Reads no snapshot.
   */
  loadHistory(entity: string): Promise<EntityHistory>
  /**
   * Keeps `entries` of `entity` fetched from the relay (history below its base) as confirmed
   * history in one write, each version once (guarantee 11), and `dropped` (retention) on the
   * base. Answers how many entries it stored. Fails with kind `closed` if the scope changed.
   */
  storeFetched(
    entity: string,
    entries: readonly StoredEntry[],
    dropped: number | undefined,
    scopeKey: string,
  ): Promise<number>
  /** The tenant of this database (meta record; else the stored history's), if known. */
  tenant(): Promise<string | undefined>
  putSnapshot(snapshot: SnapshotRecord): Promise<void>
  counters(): Promise<Counters>
  outcome(id: string): Promise<Outcome>
  /** The newest `limit` feed records, newest first. */
  corrections(limit: number): Promise<FeedRecord[]>
  /** Marks every feed record seen; answers how many were unseen. */
  markCorrectionsSeen(): Promise<number>
  /**
   * The first write of a welcomed session (guarantee 9): records the tenant (when none yet) and
   * the log's identity; another identity than the stored one puts back, clears and sets
   * `recovering`; a high-water mark above `seqLast` (a restored database) sets `recovering`.
   * `bytesOf` sizes the entries put back.
   */
  beginSession(session: SessionStart, bytesOf: (e: Entry) => number): Promise<SessionBegun>
  /** Sets `recovering`: the next welcome runs the restore recovery (an `id_conflict` was met). */
  markRecovering(): Promise<void>
  /**
   * Restore recovery's move: every outbox record goes to `newClientId` (clientSeq from 1, in
   * clientSeq order), a record's `corrects` naming a moved record names its new id, `reissued`
   * outcomes are recorded under the old ids, the new id joins `clientIds`, and `recovering` is
   * cleared, in one write. A no-op (an empty map) when the
   * current clientId is no longer `from` (another tab moved it).
   */
  reissue(from: string, newClientId: string): Promise<ReadonlyMap<string, string>>
  /**
   * Brings the kept views up to the schema (guarantee 10): every type whose definition key
   * differs from the stored one is rebuilt from the stored history and pending entries, in one
   * write. Answers the types rebuilt.
   */
  prepareViews(): Promise<readonly string[]>
  /** View records in index order (then entity name), at most `limit` (guarantee 10). */
  queryViews(query: ViewQuery): Promise<ViewRecord[]>
  /**
   * Waits for the store's running transactions, then closes it: once it resolves, the database
   * can be deleted, upgraded or restored without being blocked by this client. Later calls of
   * any method fail with kind `closed`.
   */
  close(): Promise<void>
}

/** What the client hands the function that opens its client store. */
export interface ClientStoreInit {
  readonly dbName: string
  /** Durability of append writes; `strict` unless relaxed on purpose. */
  readonly durability: Durability
  /** Called when the client store closed itself (a newer version in another tab, a failure). */
  readonly onClosed: (reason: ClientStoreClosedReason) => void
  /** The client's timers (opening may wait for another tab, with a bound). */
  readonly scheduler: Scheduler
  /** The schema whose indexed types get kept views (guarantee 10); none without one. */
  readonly schema?: Schema | undefined
}

export type Durability = 'strict' | 'relaxed' | 'default'
