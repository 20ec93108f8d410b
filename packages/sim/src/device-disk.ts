/**
 * A till's disk under IndexedDB: fake-indexeddb runs the real client's transactions, and this
 * module keeps what a crash would leave of them.
 *
 * Terms: the *live* database is fake-indexeddb's, which applies a transaction's writes as its
 * requests run; the *durable image* is, per database, the object stores as their last flushed
 * commit left them; a *relaxed* commit is durable only once *flushed* (after a short while, or
 * by the next strict commit, as an OS write-back or an fsync does); a *boot* makes a fresh
 * `IDBFactory` from the durable image.
 *
 *   transaction completes ─► snapshot of the stores in its scope
 *        strict / versionchange ─► pending relaxed ones, then it, into the durable image
 *        relaxed                ─► pending, flushed after ≤ SIM_RELAXED_FLUSH_MS_MAX
 *   crash ─► pending dropped; the live database is abandoned; boot ─► durable image
 *
 * Invariants:
 * 1. A transaction that did not complete is never in the image; a strict commit is in it from
 *    the moment its `complete` event fires (before `append` can resolve); a relaxed commit is
 *    in it only once flushed.
 * 2. A readwrite transaction's snapshot holds only the stores of its scope: fake-indexeddb runs
 *    overlapping readwrite transactions one at a time, so no other transaction's writes are
 *    half in those stores when it completes.
 * 3. Records are shared, never copied: fake-indexeddb replaces a record on overwrite and never
 *    changes one, so a snapshot is a list of references and a boot shares them too.
 * 4. An abandoned database (a crashed boot) writes nothing into the image, whatever its
 *    leftover tasks still do.
 *
 * This reaches into fake-indexeddb's internals (its `Database`, `ObjectStore`, `Index` and
 * record trees, 6.2.x); `device-disk.test.ts` proves a crash keeps exactly the commits it must.
 */
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { pathToFileURL } from 'node:url'
import 'fake-indexeddb/auto'
import { IDBFactory as FDBFactory, IDBTransaction as FDBTransaction } from 'fake-indexeddb'
import type { Prng } from '@ledgerline/testkit'
import { SIM_RELAXED_FLUSH_MS_MAX } from './limits.ts'
import type { Life } from './sim-loop.ts'

/** A copy of a disk's durable image (a profile backup, a kiosk image, a VM snapshot). */
export interface DiskImage {
  readonly databases: ReadonlyMap<string, DatabaseImage>
}

export interface DeviceDisk {
  /** A fresh `IDBFactory` over the durable image; the previous boot is abandoned. */
  boot(life: Life): Promise<IDBFactory>
  /** Power cut: unflushed relaxed commits are gone (and the live database with the boot). */
  crash(): void
  /** The durable image as it is now. */
  copy(): DiskImage
  /** Replaces the durable image (the device is off: call after `crash`). */
  restore(image: DiskImage): void
  readonly stats: { strictCommits: number; relaxedCommits: number; relaxedLost: number }
}

/**
 * @example
 * const disk = createDeviceDisk('till-1', rng.fork('disk'))
 * const indexedDB = await disk.boot(life)
 * disk.crash(); life.kill()
 * const again = await disk.boot(nextLife) // what survived
 */
export function createDeviceDisk(
  name: string,
  rng: Prng,
  /** Told after each readwrite commit is in the image or pending (a crash point). */
  onCommit?: (() => void) | undefined,
): DeviceDisk {
  installHook()
  let durable = new Map<string, DatabaseImage>()
  let pending: PendingCommit[] = []
  let live: RawFactory | undefined
  let life: Life | undefined
  let flushTimer: number | undefined
  const stats = { strictCommits: 0, relaxedCommits: 0, relaxedLost: 0 }

  const apply = (commit: PendingCommit) => {
    if (commit.full) {
      durable.set(commit.db, { version: commit.version, stores: new Map(commit.stores) })
      return
    }
    const image = durable.get(commit.db)
    // A readwrite commit always follows the versionchange that made its stores (invariant 2).
    if (image === undefined)
      throw new Error(`sim: ${name} commits to ${commit.db} before it exists`)
    const stores = new Map(image.stores)
    for (const [store, snapshot] of commit.stores) stores.set(store, snapshot)
    durable.set(commit.db, { version: image.version, stores })
  }
  const flush = () => {
    for (const commit of pending) apply(commit)
    pending = []
    if (flushTimer !== undefined) life?.cancel(flushTimer)
    flushTimer = undefined
  }
  const disk: Disk = {
    committed(commit, strict) {
      if (strict) {
        stats.strictCommits++
        flush()
        apply(commit)
        if (!commit.full) onCommit?.()
        return
      }
      stats.relaxedCommits++
      pending.push(commit)
      if (flushTimer === undefined && life !== undefined) {
        flushTimer = life.after(rng.int(1, SIM_RELAXED_FLUSH_MS_MAX), `${name} disk flush`, () => {
          flushTimer = undefined
          flush()
        })
      }
      onCommit?.()
    },
  }
  return {
    async boot(next) {
      if (live !== undefined) disks.delete(live)
      life = next
      const factory = await materialise(durable)
      live = factory as unknown as RawFactory
      disks.set(live, disk)
      return factory
    },
    crash() {
      stats.relaxedLost += pending.length
      pending = []
      flushTimer = undefined
      if (live !== undefined) disks.delete(live)
      live = undefined
    },
    copy: () => ({ databases: new Map(durable) }),
    restore(image) {
      durable = new Map(image.databases)
      pending = []
    },
    stats,
  }
}

/**
 * Loads what a boot needs of fake-indexeddb before a run: loading modules is real IO, which
 * must not happen inside the simulation's loop (it would finish at a moment no seed decides).
 *
 * @example
 * await prepareDeviceDisks()
 */
export async function prepareDeviceDisks(): Promise<void> {
  await loadInternals()
}

export interface DatabaseImage {
  readonly version: number
  readonly stores: ReadonlyMap<string, StoreImage>
}

export interface StoreImage {
  readonly keyPath: unknown
  readonly autoIncrement: boolean
  readonly keyGeneratorNum: number | null
  readonly records: readonly unknown[]
  readonly indexes: readonly IndexImage[]
}

interface IndexImage {
  readonly name: string
  readonly keyPath: unknown
  readonly multiEntry: boolean
  readonly unique: boolean
  readonly records: readonly unknown[]
}

// -- fake-indexeddb internals (6.2.x) ---------------------------------------------------------

interface RawTree {
  getAllRecords(): Iterable<unknown>
  _root: unknown
  _numNodes: number
  _numTombstones: number
  _rebuild(records: unknown[], parent: undefined, red: boolean): unknown
}
interface RawIndex {
  name: string
  keyPath: unknown
  multiEntry: boolean
  unique: boolean
  initialized: boolean
  records: { records: RawTree }
}
interface RawStore {
  deleted: boolean
  keyPath: unknown
  autoIncrement: boolean
  keyGenerator: { num: number } | null
  records: { records: RawTree }
  rawIndexes: Map<string, RawIndex>
}
interface RawDatabase {
  name: string
  version: number
  rawObjectStores: Map<string, RawStore>
}
interface RawFactory {
  _databases: Map<string, RawDatabase>
}
interface RawTransaction {
  mode: IDBTransactionMode
  durability: string
  _scope: Set<string>
  db: { _rawDatabase: RawDatabase }
}
interface Disk {
  committed(commit: PendingCommit, strict: boolean): void
}
interface PendingCommit {
  readonly db: string
  readonly version: number
  /** A versionchange commit: the stores are the whole database. */
  readonly full: boolean
  readonly stores: ReadonlyMap<string, StoreImage>
}

/** Live factories of the disks, to find which disk a completing transaction belongs to. */
const disks = new Map<RawFactory, Disk>()
let hooked = false

/** Wraps `dispatchEvent` of fake-indexeddb's transactions once: `complete` is a commit. */
function installHook(): void {
  if (hooked) return
  hooked = true
  const proto = FDBTransaction.prototype as unknown as {
    dispatchEvent(this: RawTransaction, event: Event): boolean
  }
  const inherited = Object.getPrototypeOf(proto) as typeof proto
  proto.dispatchEvent = function (this: RawTransaction, event: Event): boolean {
    if (event.type === 'complete' && this.mode !== 'readonly') committed(this)
    return inherited.dispatchEvent.call(this, event)
  }
}

function committed(tx: RawTransaction): void {
  const raw = tx.db._rawDatabase
  let disk: Disk | undefined
  for (const [factory, d] of disks) {
    if (factory._databases.get(raw.name) === raw) disk = d
  }
  if (disk === undefined) return // Not a simulated disk, or an abandoned boot (invariant 4).
  const full = tx.mode === 'versionchange'
  const names = full ? [...raw.rawObjectStores.keys()] : [...tx._scope]
  const stores = new Map<string, StoreImage>()
  for (const storeName of names) {
    const store = raw.rawObjectStores.get(storeName)
    if (store !== undefined && !store.deleted) stores.set(storeName, snapshot(store))
  }
  // Chrome's `default` is relaxed since version 121; a versionchange is always flushed.
  const strict = full || tx.durability === 'strict'
  disk.committed({ db: raw.name, version: raw.version, full, stores }, strict)
}

function snapshot(store: RawStore): StoreImage {
  return {
    keyPath: store.keyPath,
    autoIncrement: store.autoIncrement,
    keyGeneratorNum: store.keyGenerator?.num ?? null,
    records: [...store.records.records.getAllRecords()],
    indexes: [...store.rawIndexes.values()].map((index) => ({
      name: index.name,
      keyPath: index.keyPath,
      multiEntry: index.multiEntry,
      unique: index.unique,
      records: [...index.records.records.getAllRecords()],
    })),
  }
}

interface Internals {
  Database: new (name: string, version: number) => RawDatabase
  ObjectStore: new (db: RawDatabase, name: string, keyPath: unknown, auto: boolean) => RawStore
  Index: new (
    store: RawStore,
    name: string,
    keyPath: unknown,
    multiEntry: boolean,
    unique: boolean,
  ) => RawIndex
}
let internals: Promise<Internals> | undefined

/**
 * fake-indexeddb's exports map names only its public classes; its internal modules are loaded
 * by file URL, the same URLs its own modules import, so they are the same module instances.
 */
function loadInternals(): Promise<Internals> {
  internals ??= (async () => {
    const main = createRequire(import.meta.url).resolve('fake-indexeddb')
    const root = join(dirname(main), '..', '..')
    const load = async (file: string) =>
      ((await import(pathToFileURL(join(root, 'build/esm/lib', file)).href)) as { default: never })
        .default
    return {
      Database: await load('Database.js'),
      ObjectStore: await load('ObjectStore.js'),
      Index: await load('Index.js'),
    }
  })()
  return internals
}

async function materialise(image: ReadonlyMap<string, DatabaseImage>): Promise<IDBFactory> {
  const factory = new FDBFactory()
  if (image.size === 0) return factory
  const { Database, ObjectStore, Index } = await loadInternals()
  const raw = factory as unknown as RawFactory
  for (const [name, db] of image) {
    const database = new Database(name, db.version)
    for (const [storeName, s] of db.stores) {
      const store = new ObjectStore(database, storeName, s.keyPath, s.autoIncrement)
      if (store.keyGenerator !== null && s.keyGeneratorNum !== null) {
        store.keyGenerator.num = s.keyGeneratorNum
      }
      fill(store.records.records, s.records)
      for (const ix of s.indexes) {
        const index = new Index(store, ix.name, ix.keyPath, ix.multiEntry, ix.unique)
        index.initialized = true
        fill(index.records.records, ix.records)
        store.rawIndexes.set(ix.name, index)
      }
      database.rawObjectStores.set(storeName, store)
    }
    raw._databases.set(name, database)
  }
  return factory
}

/** Builds a balanced tree from records already in key order (invariant 3: shared). */
function fill(tree: RawTree, records: readonly unknown[]): void {
  if (records.length === 0) return
  tree._root = tree._rebuild([...records], undefined, false)
  tree._numNodes = records.length
  tree._numTombstones = 0
}
