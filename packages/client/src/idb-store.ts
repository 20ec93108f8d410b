/**
 * The client's IndexedDB store: the outbox, the confirmed history, cursors, outcomes and the
 * corrections feed of one database (`dbName`). Every write is one transaction.
 *
 * Layout (database version 2):
 *
 *   meta       'client'  → ClientMeta   clientId, last clientSeq, outbox counters, feed counters
 *              'cursors' → CursorsRecord  per-partition offsets received, with the scope and
 *                          tenant, the last chunk number and how far the ledger index reaches
 *   outbox     [clientId, clientSeq] → { entry, bytes, at }     own entries not yet acked
 *                index 'id' (unique), index 'entity'
 *   acked      id → { entry, version, partition, offset }       acked, not yet received back
 *                index 'entity'                                  through the subscription
 *   chunks     n → { partition, first, last, entries }           confirmed history
 *   staged     n → { entities: [entity, chunk n…][] }            ledger keys not yet indexed
 *   ledgers    [entity, last chunk n] → { chunks: n[] }          the per-entity index
 *   snapshots  entity → { version, state, through: chunk n }     folded state up to a chunk
 *   outcomes   id → { n, outcome }                               appended/duplicate/refused
 *   feed       id → { n, entry, unseen }                         corrections of own entries
 *
 * Why chunks: confirmed history arrives from the relay in pages of up to 1,000 entries, often
 * several back to back during catch-up. `applyPages` stores all the pages it is given in ONE
 * transaction, as one *chunk* record per partition (numbered n = 1, 2, 3… in arrival order),
 * so a cold catch-up costs a few puts per page instead of one per entry (one record per entry
 * caps near 15,000 puts/s in Chromium). Indexing each entry by entity at that moment would cost
 * one index write per entity per page again (it was half the time of a catch-up in layout 1),
 * so the transaction only adds one *staged* record listing which chunks hold which entities.
 * `indexPending` later folds many staged records into the per-entity index at once: one
 * `ledgers` record per entity touched since the last run (a blind put, no read), so the index
 * costs one write per entity per run instead of per page. A load reads the entity's `ledgers`
 * records from its snapshot's chunk on, plus every staged record (bounded by
 * INDEX_STAGED_KEYS_MAX), and then only the chunks that hold the entity.
 *
 * Upgrades: 1 → 2 drops layout 1's pages and snapshots and forgets the cursors, so confirmed
 * history is fetched again from the relay (it can always be: the relay keeps it); the outbox,
 * acked entries, outcomes and the corrections feed are kept as they are.
 *
 * Invariants:
 * 1. `append` allocates clientSeq (meta.seqLast + 1 …) and puts the outbox records, which carry
 *    the entries themselves, in ONE readwrite transaction with the configured durability
 *    (`strict` by default): an entry never exists without its outbox record, nor the reverse,
 *    and clientSeq is gap-free per clientId.
 * 2. Nothing is awaited inside a transaction except that transaction's own requests (idb:
 *    "Do not await other things between the start and end of your transaction",
 *    https://github.com/jakearchibald/idb#transaction-lifetime). On any failure the transaction
 *    is aborted, so nothing is half-written.
 * 3. Entries are validated before they are written (`append`) and again after they are read
 *    back from the outbox (`readOutbox`): pair assertions.
 * 4. Every outbox record has the current meta.clientId; the outbox drains in key order, which
 *    is clientSeq order. (`reissue` moves all of them to a new clientId in one transaction.)
 * 5. An ack is applied in one transaction: outbox records deleted, positions kept in `acked`,
 *    outcomes recorded (refusals included), corrections stored in the feed, counters updated.
 * 6. Pages of entries are stored in one transaction with the cursors after the last of them
 *    and their staged record; offsets at or below the stored cursor are dropped, so an entry is
 *    never stored twice, and the cursor never runs ahead of what is stored. Pages use relaxed
 *    durability: a page lost to a power cut is lost with its cursor, and fetched again.
 * 7. Cursors, chunks, the ledger index and snapshots belong to one (tenant, scope); when either
 *    changes they are cleared together.
 * 8. Every chunk n ≤ CursorsRecord.chunkLast is listed either in a staged record or (once
 *    `indexPending` ran) in its entities' `ledgers` records, never lost between the two: the
 *    move is one transaction.
 */
import type { Entry, StoredEntry } from '@ledgerline/core'
import { assert, validateEntry } from '@ledgerline/core'
import type { AckResult, Cursors } from '@ledgerline/protocol'
import type { DBSchema, IDBPDatabase, IDBPTransaction, StoreNames } from 'idb'
import { wrap } from 'idb'
import { ClientError, toStorageError } from './errors.ts'
import {
  CHUNK_ENTRIES_MAX,
  CORRECTIONS_FEED_MAX,
  OPEN_BLOCKED_MS_MAX,
  OUTCOMES_MAX,
} from './limits.ts'

/**
 * Version of the database layout. History:
 * 1 — first layout (Ledgerline 0.1.0).
 * 2 — confirmed history in chunks with a staged per-entity index (Ledgerline 0.1.0).
 */
export const DB_VERSION = 2

export type Durability = 'strict' | 'relaxed' | 'default'

/** What `outcome(entryId)` tells about one of this client's entries. */
export type Outcome =
  | { readonly _tag: 'pending' }
  | {
      readonly _tag: 'appended' | 'duplicate'
      readonly version: number
      readonly partition: number
      readonly offset: number
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
  readonly createdAt: number
  readonly outboxEntries: number
  readonly outboxBytes: number
  readonly correctionsUnseen: number
  /** Counter ordering outcomes and feed records. */
  readonly n: number
}

export interface CursorsRecord {
  readonly tenant: string
  readonly scopeKey: string
  readonly cursors: Cursors
  /** Number of the last chunk stored (0: none). */
  readonly chunkLast: number
  /** (entity, chunk) keys in the staged records. */
  readonly stagedKeys: number
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

export interface LedgerIndexRecord {
  readonly entity: string
  /** The last of `chunks`. */
  readonly last: number
  /** Chunks holding entries of `entity`, ascending. */
  readonly chunks: readonly number[]
}

export interface SnapshotRecord {
  readonly entity: string
  readonly version: number
  readonly state: unknown
  /** The last chunk folded into `state`. */
  readonly through: number
  /** Fingerprint of the entity type's code: a changed `reduce` invalidates the snapshot. */
  readonly typeKey: string
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

interface LedgerDb extends DBSchema {
  meta: { key: string; value: ClientMeta | CursorsRecord }
  outbox: {
    key: [string, number]
    value: OutboxRecord
    indexes: { id: string; entity: string }
  }
  acked: { key: string; value: AckedRecord; indexes: { entity: string } }
  chunks: { key: number; value: ChunkRecord }
  staged: { key: number; value: StagedRecord }
  ledgers: { key: [string, number]; value: LedgerIndexRecord }
  snapshots: { key: string; value: SnapshotRecord }
  outcomes: { key: string; value: OutcomeRecord; indexes: { n: number } }
  feed: { key: string; value: FeedRecord; indexes: { n: number } }
}

type Db = IDBPDatabase<LedgerDb>
type Names = StoreNames<LedgerDb>

export interface StoreOptions {
  readonly indexedDB: IDBFactory
  /** The key-range class matching `indexedDB` (Node: fake-indexeddb's). */
  readonly IDBKeyRange: typeof IDBKeyRange
  readonly dbName: string
  /** Durability of append transactions; `strict` unless relaxed on purpose. */
  readonly durability: Durability
  /** Layout version to open; tests use a higher one to play a newer tab. */
  readonly version?: number | undefined
  /** Called when the connection closed itself for a newer version, or was terminated. */
  readonly onClosed: (reason: 'versionchange' | 'terminated') => void
}

/** A draft the client turns into an entry inside the append transaction. */
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
  readonly entities: ReadonlySet<string>
  /** Entries that stay in the outbox (refused with `seq_gap`: resend in order). */
  readonly gaps: number
  readonly corrections: readonly FeedRecord[]
  readonly settled: ReadonlyMap<string, Outcome>
}

/** One received `entries` page. */
export interface PageIn {
  readonly entries: readonly StoredEntry[]
  /** The relay's cursors after this page. */
  readonly cursors: Cursors
}

export interface PageApplied {
  readonly entities: ReadonlySet<string>
  readonly corrections: readonly FeedRecord[]
  /** Entries stored (after dropping those at or below the cursor). */
  readonly stored: number
  /** This client's own entries among them (their `acked` records were deleted). */
  readonly own: number
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
  /** Confirmed entries after the snapshot (or from version 1), in version order. */
  readonly stored: readonly StoredEntry[]
  /** The last chunk read, if any. */
  readonly lastChunk: number | undefined
  /** Own entries not yet received back (outbox and acked), in clientSeq order. */
  readonly pending: readonly Entry[]
  readonly acked: ReadonlySet<string>
}

export interface Counters {
  readonly clientId: string
  readonly seqLast: number
  readonly outboxEntries: number
  readonly outboxBytes: number
  readonly oldestPendingAt: number | null
  readonly correctionsUnseen: number
  readonly ackedWaiting: number
}

/** What one `append` transaction committed: the entries and the meta record it wrote. */
export interface Appended {
  readonly entries: readonly Entry[]
  readonly bytes: number
  /** The meta record as this transaction wrote it (counters exact as of its commit). */
  readonly meta: ClientMeta
  /** The outbox was empty before this append (so its entries are the oldest pending). */
  readonly wasEmpty: boolean
}

export interface Store {
  /** Reads the meta record, creating it (a new clientId) when the database is new or wiped. */
  init(newClientId: () => string, now: number): Promise<{ meta: ClientMeta; created: boolean }>
  append(
    make: MakeEntries,
    limits: AppendLimits,
    now: number,
    bytesOf: (e: Entry) => number,
  ): Promise<Appended>
  readOutbox(
    after: readonly [string, number] | undefined,
    entriesMax: number,
    bytesMax: number,
  ): Promise<OutboxRecord[]>
  /**
   * Applies acks in one transaction. `lean` (used after a `storage_full` failure) only deletes
   * the acked outbox records and rewrites the meta record, so a full disk never stops the
   * outbox from draining; outcomes and positions are then not kept.
   */
  applyAck(
    items: readonly AckItem[],
    keepAcked: (entity: string) => boolean,
    lean?: boolean,
  ): Promise<AckApplied>
  prepareCursors(
    tenant: string,
    scopeKey: string,
    inScope: (entity: string) => boolean,
  ): Promise<Cursors>
  /**
   * Stores pages received back to back, in arrival order, in ONE transaction with the cursors
   * after the last of them (invariant 6). Fails with kind `closed` if the scope changed.
   */
  applyPages(pages: readonly PageIn[], scopeKey: string): Promise<PageApplied>
  /**
   * Moves staged ledger keys into the per-entity index, one transaction; false when nothing
   * was staged.
   */
  indexPending(): Promise<boolean>
  /**
   * Reads what folding `entity` needs. `base` undefined: start from the stored snapshot (if its
   * `typeKey` matches); a base: start after it (what the cache already folded); `null`: from
   * version 1.
   */
  loadEntity(entity: string, typeKey: string, base?: EntityBase | null): Promise<EntityLoad>
  /** The tenant of the stored history, if any. */
  tenant(): Promise<string | undefined>
  putSnapshot(snapshot: SnapshotRecord): Promise<void>
  counters(): Promise<Counters>
  outcome(id: string): Promise<Outcome>
  corrections(limit: number): Promise<FeedRecord[]>
  markCorrectionsSeen(): Promise<number>
  /** Moves every outbox record to `newClientId` (seq from 1) after a restored/copied database. */
  reissue(newClientId: string, high: number): Promise<ReadonlyMap<string, string>>
  close(): void
}

/**
 * Opens (and creates or upgrades) the database. When another tab holds an older version open,
 * it is asked to close (its `versionchange` handler does); if it has not after
 * `OPEN_BLOCKED_MS_MAX`, opening fails with kind `upgrade_blocked` instead of hanging.
 *
 * @example
 * const store = await openStore({ indexedDB, dbName: 'till-1', durability: 'strict', onClosed })
 */
export async function openStore(options: StoreOptions): Promise<Store> {
  const db = await openDb(options)
  return createIdbStore(db, options)
}

function openDb(options: StoreOptions): Promise<Db> {
  return new Promise<Db>((resolve, reject) => {
    let request: IDBOpenDBRequest
    try {
      request = options.indexedDB.open(options.dbName, options.version ?? DB_VERSION)
    } catch (error) {
      reject(toStorageError(error))
      return
    }
    let blockedTimer: ReturnType<typeof setTimeout> | undefined
    let gaveUp = false
    request.onupgradeneeded = (event) => {
      const tx = request.transaction
      assert(tx !== null, 'an upgrade runs in a versionchange transaction')
      upgrade(wrap(request.result) as unknown as Db, event.oldVersion, tx)
    }
    // https://developer.mozilla.org/en-US/docs/Web/API/IDBOpenDBRequest/blocked_event: the
    // upgrade waits until every older connection closes. Never wait silently.
    request.onblocked = () => {
      blockedTimer ??= setTimeout(() => {
        gaveUp = true
        reject(
          new ClientError(
            'upgrade_blocked',
            `database '${options.dbName}' is held open by another tab of an older version: close other tabs and reload`,
          ),
        )
      }, OPEN_BLOCKED_MS_MAX)
    }
    request.onerror = () => {
      clearTimeout(blockedTimer)
      reject(toStorageError(request.error))
    }
    request.onsuccess = () => {
      clearTimeout(blockedTimer)
      const raw = request.result
      if (gaveUp) {
        // The caller was already told `upgrade_blocked`; do not leave a connection behind.
        raw.close()
        return
      }
      // A newer version wants to open: close at once so its upgrade is not blocked, and tell
      // the client (it stops and asks for a reload).
      raw.onversionchange = () => {
        raw.close()
        options.onClosed('versionchange')
      }
      // Abnormal close (storage wiped under us, disk error).
      raw.onclose = () => options.onClosed('terminated')
      resolve(wrap(raw) as unknown as Db)
    }
  })
}

/**
 * Runs inside the versionchange transaction `tx`, used raw: wrapping it would add a `done`
 * promise that rejects, unobserved, when an upgrade is given up (`upgrade_blocked`).
 */
function upgrade(db: Db, oldVersion: number, tx: IDBTransaction): void {
  if (oldVersion < 1) {
    db.createObjectStore('meta')
    const outbox = db.createObjectStore('outbox', { keyPath: ['clientId', 'clientSeq'] })
    outbox.createIndex('id', 'id', { unique: true })
    outbox.createIndex('entity', 'entity')
    const acked = db.createObjectStore('acked', { keyPath: 'id' })
    acked.createIndex('entity', 'entity')
    // Layout 1's store, typed loosely: layout 2 no longer has it (see below).
    const legacy = db as unknown as IDBPDatabase
    const pages = legacy.createObjectStore('pages', { keyPath: ['partition', 'first'] })
    pages.createIndex('entity', 'keys', { multiEntry: true })
    db.createObjectStore('snapshots', { keyPath: 'entity' })
    db.createObjectStore('outcomes', { keyPath: 'id' }).createIndex('n', 'n')
    db.createObjectStore('feed', { keyPath: 'id' }).createIndex('n', 'n')
  }
  if (oldVersion < 2) {
    // Layout 1's pages (one index key per entity per page) give way to chunks with a staged
    // ledger index. History is not converted: forgetting the cursors makes the client fetch it
    // again from the relay, which keeps it; outbox, acked, outcomes and feed stay as they are.
    ;(db as unknown as IDBPDatabase).deleteObjectStore('pages')
    tx.objectStore('snapshots').clear()
    tx.objectStore('meta').delete('cursors')
    db.createObjectStore('chunks', { keyPath: 'n' })
    db.createObjectStore('staged', { keyPath: 'n' })
    db.createObjectStore('ledgers', { keyPath: ['entity', 'last'] })
  }
  // Later versions add `if (oldVersion < 3) { … }` here, never edit the blocks above.
}

function createIdbStore(db: Db, options: StoreOptions): Store {
  const durability = options.durability
  const KeyRange = options.IDBKeyRange

  /**
   * Runs `body` in one transaction. `body` may await only requests of `tx`. On any failure the
   * transaction is aborted and the error becomes a `ClientError` (quota → `storage_full`).
   */
  async function run<N extends Names, M extends IDBTransactionMode, T>(
    names: N[],
    mode: M,
    txDurability: Durability,
    body: (
      tx: IDBPTransaction<LedgerDb, N[], M>,
      track: <P>(p: Promise<P>) => Promise<P>,
    ) => Promise<T>,
  ): Promise<T> {
    let tx: IDBPTransaction<LedgerDb, N[], M>
    try {
      tx = db.transaction(names, mode, { durability: txDurability })
    } catch (error) {
      throw toStorageError(error)
    }
    const pending: Promise<unknown>[] = []
    // Requests not awaited by `body` are tracked so their failure is seen (and never left as an
    // unhandled rejection when the transaction aborts).
    const track = <P>(p: Promise<P>): Promise<P> => {
      p.catch(noop)
      pending.push(p)
      return p
    }
    tx.done.catch(noop)
    try {
      const result = await body(tx, track)
      await Promise.all(pending)
      await tx.done
      return result
    } catch (error) {
      try {
        tx.abort()
      } catch {
        // Already finished or aborted: nothing more to undo.
      }
      throw toStorageError(error, tx.error)
    }
  }

  const store: Store = {
    async init(newClientId, now) {
      return run(['meta'], 'readwrite', 'strict', async (tx, track) => {
        const meta = tx.objectStore('meta')
        const found = (await meta.get('client')) as ClientMeta | undefined
        if (found !== undefined) return { meta: found, created: false }
        // No meta: a new database, or one wiped by the browser or the user. Either way this is
        // a new client: a fresh clientId means no clientSeq can ever be reused.
        const clientId = newClientId()
        const created: ClientMeta = {
          clientId,
          seqLast: 0,
          clientIds: [clientId],
          createdAt: now,
          outboxEntries: 0,
          outboxBytes: 0,
          correctionsUnseen: 0,
          n: 0,
        }
        void track(meta.put(created, 'client'))
        return { meta: created, created: true }
      })
    },

    async append(make, limits, now, bytesOf) {
      return run(['meta', 'outbox'], 'readwrite', durability, async (tx, track) => {
        const metaStore = tx.objectStore('meta')
        const meta = (await metaStore.get('client')) as ClientMeta | undefined
        if (meta === undefined)
          throw new ClientError('closed', 'database was wiped: reopen the client')
        const entries = make(meta.clientId, meta.seqLast + 1)
        let bytes = 0
        const outbox = tx.objectStore('outbox')
        const records: OutboxRecord[] = []
        entries.forEach((entry, i) => {
          // Pair assertion, first half: what goes into the outbox is a valid entry of ours.
          validateEntry(entry)
          assert(
            entry.clientId === meta.clientId && entry.clientSeq === meta.seqLast + 1 + i,
            'seq order',
          )
          const size = bytesOf(entry)
          bytes += size
          records.push({
            clientId: entry.clientId,
            clientSeq: entry.clientSeq,
            id: entry.id,
            entity: entry.entity,
            entry,
            bytes: size,
            at: now,
          })
        })
        if (
          meta.outboxEntries + entries.length > limits.entriesMax ||
          meta.outboxBytes + bytes > limits.bytesMax
        ) {
          throw new ClientError(
            'outbox_full',
            `outbox holds ${meta.outboxEntries} entries (${meta.outboxBytes} bytes); the limit is ${limits.entriesMax} entries, ${limits.bytesMax} bytes`,
          )
        }
        for (const record of records) void track(outbox.add(record))
        const written: ClientMeta = {
          ...meta,
          seqLast: meta.seqLast + entries.length,
          outboxEntries: meta.outboxEntries + entries.length,
          outboxBytes: meta.outboxBytes + bytes,
        }
        void track(metaStore.put(written, 'client'))
        return { entries, bytes, meta: written, wasEmpty: meta.outboxEntries === 0 }
      })
    },

    async readOutbox(after, entriesMax, bytesMax) {
      const records = await run(['outbox'], 'readonly', 'default', async (tx) => {
        const range = after === undefined ? undefined : KeyRange.lowerBound([...after], true)
        return tx.objectStore('outbox').getAll(range, entriesMax)
      })
      const out: OutboxRecord[] = []
      let bytes = 0
      for (const record of records) {
        // Pair assertion, second half: what comes back out of the outbox is still valid.
        const entry = validateEntry(record.entry)
        assert(
          entry.id === record.id && entry.clientSeq === record.clientSeq,
          'outbox record matches its entry',
        )
        if (out.length > 0 && bytes + record.bytes > bytesMax) break
        bytes += record.bytes
        out.push(record)
      }
      return out
    },

    async applyAck(items, keepAcked, lean = false) {
      return run(
        ['meta', 'outbox', 'acked', 'outcomes', 'feed'],
        'readwrite',
        'relaxed',
        async (tx, track) => {
          const metaStore = tx.objectStore('meta')
          const outbox = tx.objectStore('outbox')
          const [meta, cursorsRec] = (await Promise.all([
            metaStore.get('client'),
            metaStore.get('cursors'),
          ])) as [ClientMeta, CursorsRecord | undefined]
          const present = await Promise.all(
            items.map((item) => outbox.getKey([item.record.clientId, item.record.clientSeq])),
          )
          let { outboxEntries, outboxBytes, correctionsUnseen, n } = meta
          let gaps = 0
          const entities = new Set<string>()
          const corrections: FeedRecord[] = []
          const settled = new Map<string, Outcome>()
          const feedCandidates: FeedRecord[] = []
          for (const [i, { record, result }] of items.entries()) {
            assert(result.id === record.id, 'ack result answers its entry')
            if (present[i] === undefined) continue // applied before (an ack seen twice)
            if (result.status === 'refused' && result.code === 'seq_gap') {
              gaps++
              continue
            }
            void track(outbox.delete([record.clientId, record.clientSeq]))
            outboxEntries--
            outboxBytes -= record.bytes
            entities.add(record.entity)
            let outcome: Outcome
            if (result.status === 'refused') {
              outcome = {
                _tag: 'refused',
                code: result.code,
                reason: result.reason,
                head: result.head,
              }
            } else {
              outcome = {
                _tag: result.status,
                version: result.version,
                partition: result.partition,
                offset: result.offset,
                committedAt: result.committedAt,
              }
              // Keep the entry as pending until the subscription brings it back, unless the stored
              // cursor already passed it (its page arrived before the ack did).
              const received = cursorsRec?.cursors[result.partition] ?? 0
              if (!lean && keepAcked(record.entity) && result.offset > received) {
                void track(
                  tx.objectStore('acked').put({
                    id: record.id,
                    entity: record.entity,
                    entry: record.entry,
                    version: result.version,
                    partition: result.partition,
                    offset: result.offset,
                  }),
                )
              }
              for (const c of lean ? [] : result.corrections) {
                feedCandidates.push({ id: c.id, n: 0, entry: c, of: record.id, unseen: true })
                entities.add(c.entity)
              }
            }
            settled.set(record.id, outcome)
            if (!lean)
              void track(tx.objectStore('outcomes').put({ id: record.id, n: ++n, outcome }))
          }
          const feed = tx.objectStore('feed')
          const known = await Promise.all(feedCandidates.map((c) => feed.getKey(c.id)))
          feedCandidates.forEach((c, i) => {
            if (known[i] !== undefined) return
            const rec = { ...c, n: ++n }
            corrections.push(rec)
            correctionsUnseen++
            void track(feed.put(rec))
          })
          await prune(tx.objectStore('outcomes'), OUTCOMES_MAX, track)
          await prune(feed, CORRECTIONS_FEED_MAX, track)
          assert(outboxEntries >= 0, 'outbox count stays non-negative')
          void track(
            metaStore.put(
              {
                ...meta,
                outboxEntries,
                outboxBytes: Math.max(0, outboxBytes),
                correctionsUnseen,
                n,
              },
              'client',
            ),
          )
          return { entities, gaps, corrections, settled }
        },
      )
    },

    async prepareCursors(tenant, scopeKey, inScope) {
      return run(
        ['meta', 'chunks', 'staged', 'ledgers', 'snapshots', 'acked'],
        'readwrite',
        'relaxed',
        async (tx, track) => {
          const meta = tx.objectStore('meta')
          const found = (await meta.get('cursors')) as CursorsRecord | undefined
          if (found !== undefined && found.tenant === tenant && found.scopeKey === scopeKey)
            return found.cursors
          // Another tenant or scope: the stored history answers a different question. Start over.
          for (const name of ['chunks', 'staged', 'ledgers', 'snapshots'] as const)
            void track(tx.objectStore(name).clear())
          const acked = await tx.objectStore('acked').getAll()
          for (const a of acked)
            if (!inScope(a.entity)) void track(tx.objectStore('acked').delete(a.id))
          const fresh: CursorsRecord = {
            tenant,
            scopeKey,
            cursors: {},
            chunkLast: 0,
            stagedKeys: 0,
          }
          void track(meta.put(fresh, 'cursors'))
          return {}
        },
      )
    },

    async applyPages(pages, scopeKey) {
      return run(
        ['meta', 'chunks', 'staged', 'acked', 'feed'],
        'readwrite',
        'relaxed',
        async (tx, track) => {
          const metaStore = tx.objectStore('meta')
          const [rec, meta] = await Promise.all([metaStore.get('cursors'), metaStore.get('client')])
          const stored = rec as CursorsRecord | undefined
          if (stored === undefined || stored.scopeKey !== scopeKey) {
            throw new ClientError('closed', 'subscription scope changed while a page was in flight')
          }
          const clientMeta = meta as ClientMeta
          const own = new Set(clientMeta.clientIds)
          const next: Record<number, number> = { ...stored.cursors }
          const byPartition = new Map<number, StoredEntry[]>()
          const entities = new Set<string>()
          const feedCandidates: FeedRecord[] = []
          let count = 0
          let ownCount = 0
          for (const page of pages) {
            for (const e of page.entries) {
              if (e.offset <= (next[e.partition] ?? 0)) continue // already stored (invariant 6)
              next[e.partition] = e.offset
              let list = byPartition.get(e.partition)
              if (list === undefined) byPartition.set(e.partition, (list = []))
              list.push(e)
              entities.add(e.entity)
              count++
              if (own.has(e.clientId)) {
                ownCount++
                void track(tx.objectStore('acked').delete(e.id))
              }
              if (
                e.corrects !== undefined &&
                e.clientId === 'server' &&
                own.has(e.corrects.slice(0, 32))
              ) {
                feedCandidates.push({
                  id: e.id,
                  n: 0,
                  entry: e,
                  of: e.corrects.split('~')[0] as string,
                  unseen: true,
                })
              }
            }
            // The relay's cursors may pass entries outside the scope: take them after the page.
            for (const [p, offset] of Object.entries(page.cursors)) {
              next[Number(p)] = Math.max(next[Number(p)] ?? 0, offset)
            }
          }
          // One chunk per partition (at most CHUNK_ENTRIES_MAX entries each, so that loading one
          // entity never reads a huge record), and one staged record naming their entities.
          let chunkLast = stored.chunkLast
          const staged = new Map<string, number[]>()
          let keys = 0
          for (const [partition, list] of byPartition) {
            for (let at = 0; at < list.length; at += CHUNK_ENTRIES_MAX) {
              const part = list.slice(at, at + CHUNK_ENTRIES_MAX)
              const n = ++chunkLast
              void track(
                tx.objectStore('chunks').put({
                  n,
                  partition,
                  first: (part[0] as StoredEntry).offset,
                  last: (part.at(-1) as StoredEntry).offset,
                  entries: part,
                }),
              )
              for (const e of part) {
                const chunks = staged.get(e.entity)
                if (chunks === undefined) {
                  staged.set(e.entity, [n])
                  keys++
                } else if (chunks.at(-1) !== n) {
                  chunks.push(n)
                  keys++
                }
              }
            }
          }
          if (staged.size > 0) {
            void track(tx.objectStore('staged').put({ n: chunkLast, entities: [...staged], keys }))
          }
          const stagedKeys = stored.stagedKeys + keys
          void track(metaStore.put({ ...stored, cursors: next, chunkLast, stagedKeys }, 'cursors'))
          const corrections: FeedRecord[] = []
          if (feedCandidates.length > 0) {
            const feed = tx.objectStore('feed')
            const known = await Promise.all(feedCandidates.map((c) => feed.getKey(c.id)))
            let { n, correctionsUnseen } = clientMeta
            feedCandidates.forEach((c, i) => {
              if (known[i] !== undefined) return
              const r = { ...c, n: ++n }
              corrections.push(r)
              correctionsUnseen++
              void track(feed.put(r))
            })
            void track(metaStore.put({ ...clientMeta, n, correctionsUnseen }, 'client'))
          }
          return {
            entities,
            corrections,
            stored: count,
            own: ownCount,
            cursors: next,
            stagedKeys,
          }
        },
      )
    },

    async indexPending() {
      return run(['meta', 'staged', 'ledgers'], 'readwrite', 'relaxed', async (tx, track) => {
        const [staged, rec] = await Promise.all([
          tx.objectStore('staged').getAll(),
          tx.objectStore('meta').get('cursors') as Promise<CursorsRecord | undefined>,
        ])
        if (staged.length === 0 || rec === undefined) return false
        // Staged records come in chunk order (their key), so each entity's list stays ascending.
        const merged = new Map<string, number[]>()
        for (const record of staged) {
          for (const [entity, chunks] of record.entities) {
            const list = merged.get(entity)
            if (list === undefined) merged.set(entity, [...chunks])
            else list.push(...chunks)
          }
        }
        const ledgers = tx.objectStore('ledgers')
        for (const [entity, chunks] of merged) {
          void track(ledgers.put({ entity, last: chunks.at(-1) as number, chunks }))
        }
        void track(tx.objectStore('staged').clear())
        void track(tx.objectStore('meta').put({ ...rec, stagedKeys: 0 }, 'cursors'))
        return true
      })
    },

    async loadEntity(entity, typeKey, base) {
      return run(
        ['chunks', 'staged', 'ledgers', 'outbox', 'acked', 'snapshots'],
        'readonly',
        'default',
        async (tx) => {
          let snapshot: EntityBase | undefined = base ?? undefined
          if (base === undefined) {
            const found = await tx.objectStore('snapshots').get(entity)
            if (found !== undefined && found.typeKey === typeKey) snapshot = found
          }
          const from = snapshot?.through ?? 0
          const [indexed, staged, outboxed, acked] = await Promise.all([
            tx.objectStore('ledgers').getAll(KeyRange.bound([entity, from], [entity, Infinity])),
            tx.objectStore('staged').getAll(),
            tx.objectStore('outbox').index('entity').getAll(entity),
            tx.objectStore('acked').index('entity').getAll(entity),
          ])
          const wanted = new Set<number>()
          for (const r of indexed) for (const n of r.chunks) if (n >= from) wanted.add(n)
          for (const r of staged) {
            for (const [name, chunks] of r.entities)
              if (name === entity) for (const n of chunks) if (n >= from) wanted.add(n)
          }
          const numbers = [...wanted].sort((a, b) => a - b)
          const chunks = await Promise.all(numbers.map((n) => tx.objectStore('chunks').get(n)))
          const fromVersion = snapshot?.version ?? 0
          const stored: StoredEntry[] = []
          for (const chunk of chunks) {
            assert(chunk !== undefined, 'an indexed chunk exists')
            for (const e of chunk.entries)
              if (e.entity === entity && e.version > fromVersion) stored.push(e)
          }
          stored.sort((a, b) => a.version - b.version)
          const pending = [...acked.map((a) => a.entry), ...outboxed.map((o) => o.entry)]
          return {
            snapshot,
            stored,
            lastChunk: numbers.at(-1),
            pending,
            acked: new Set(acked.map((a) => a.id)),
          }
        },
      )
    },

    async tenant() {
      return run(['meta'], 'readonly', 'default', async (tx) => {
        const rec = (await tx.objectStore('meta').get('cursors')) as CursorsRecord | undefined
        return rec?.tenant
      })
    },

    async putSnapshot(snapshot) {
      await run(['snapshots'], 'readwrite', 'relaxed', async (tx, track) => {
        void track(tx.objectStore('snapshots').put(snapshot))
      })
    },

    async counters() {
      return run(['meta', 'outbox', 'acked'], 'readonly', 'default', async (tx) => {
        const [meta, first, ackedWaiting] = await Promise.all([
          tx.objectStore('meta').get('client') as Promise<ClientMeta | undefined>,
          tx.objectStore('outbox').getAll(undefined, 1),
          tx.objectStore('acked').count(),
        ])
        if (meta === undefined)
          throw new ClientError('closed', 'database was wiped: reopen the client')
        return {
          clientId: meta.clientId,
          seqLast: meta.seqLast,
          outboxEntries: meta.outboxEntries,
          outboxBytes: meta.outboxBytes,
          oldestPendingAt: first[0]?.at ?? null,
          correctionsUnseen: meta.correctionsUnseen,
          ackedWaiting,
        }
      })
    },

    async outcome(id) {
      return run(['outbox', 'acked', 'outcomes'], 'readonly', 'default', async (tx) => {
        const [inOutbox, outcome] = await Promise.all([
          tx.objectStore('outbox').index('id').getKey(id),
          tx.objectStore('outcomes').get(id),
        ])
        if (inOutbox !== undefined) return { _tag: 'pending' } as const
        if (outcome !== undefined) return outcome.outcome
        const acked = await tx.objectStore('acked').get(id)
        if (acked !== undefined)
          return {
            _tag: 'appended',
            version: acked.version,
            partition: acked.partition,
            offset: acked.offset,
            committedAt: 0,
          } as const
        return { _tag: 'unknown' } as const
      })
    },

    async corrections(limit) {
      return run(['feed'], 'readonly', 'default', async (tx) => {
        const all = await tx.objectStore('feed').index('n').getAll(undefined, undefined)
        return all.slice(-limit).reverse()
      })
    },

    async markCorrectionsSeen() {
      return run(['meta', 'feed'], 'readwrite', 'relaxed', async (tx, track) => {
        const feed = tx.objectStore('feed')
        const [all, meta] = await Promise.all([feed.getAll(), tx.objectStore('meta').get('client')])
        let marked = 0
        for (const r of all) {
          if (!r.unseen) continue
          marked++
          void track(feed.put({ ...r, unseen: false }))
        }
        void track(
          tx.objectStore('meta').put({ ...(meta as ClientMeta), correctionsUnseen: 0 }, 'client'),
        )
        return marked
      })
    },

    async reissue(newClientId, high) {
      return run(['meta', 'outbox', 'outcomes'], 'readwrite', 'strict', async (tx, track) => {
        const metaStore = tx.objectStore('meta')
        const outbox = tx.objectStore('outbox')
        const [meta, records] = await Promise.all([
          metaStore.get('client') as Promise<ClientMeta>,
          outbox.getAll(),
        ])
        // Another tab may have done it already.
        if (meta.seqLast >= high) return new Map<string, string>()
        const renamed = new Map<string, string>()
        let n = meta.n
        records.forEach((r, i) => {
          const clientSeq = i + 1
          const id = `${newClientId}-${clientSeq}`
          const entry = validateEntry({ ...r.entry, id, clientId: newClientId, clientSeq })
          void track(outbox.delete([r.clientId, r.clientSeq]))
          void track(outbox.add({ ...r, clientId: newClientId, clientSeq, id, entry }))
          void track(
            tx
              .objectStore('outcomes')
              .put({ id: r.id, n: ++n, outcome: { _tag: 'reissued', as: id } }),
          )
          renamed.set(r.id, id)
        })
        void track(
          metaStore.put(
            {
              ...meta,
              clientId: newClientId,
              seqLast: records.length,
              clientIds: [...meta.clientIds, newClientId],
              n,
            },
            'client',
          ),
        )
        return renamed
      })
    },

    close() {
      db.close()
    },
  }
  return store
}

/** Deletes the oldest records (by index `n`) beyond `max`. */
async function prune(
  store: {
    count(): Promise<number>
    index(name: 'n'): { getAllKeys(q?: null, c?: number): Promise<string[]> }
    delete(key: string): Promise<void>
  },
  max: number,
  track: <P>(p: Promise<P>) => Promise<P>,
): Promise<void> {
  const count = await store.count()
  if (count <= max) return
  const oldest = await store.index('n').getAllKeys(null, count - max)
  for (const key of oldest) void track(store.delete(key))
}

function noop(): void {}
