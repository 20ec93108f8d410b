/**
 * The CRDT adapter contract: one suite that `@ledgerline/yjs` and `@ledgerline/automerge` both
 * pass (STYLE.md "Contract suites"). It drives an adapter's *binding* (the live document bound
 * to an entity through a client), not the CRDT library alone, through a seeded, in-memory
 * imitation of Ledgerline: clients with an outbox that survives reloads, a server log that
 * dedupes by entry id and writes snapshots, and a network that reorders, duplicates and drops.
 *
 *   replica ─edit─► binding ─append─► fake client (entries + outbox, kept across reloads)
 *                                         │ push (dropped / duplicated / reordered)
 *                                         ▼
 *                                   fake server log ── snapshot every few updates
 *                                         │ deliver (random subset, random order, duplicates)
 *                                         ▼
 *                                   other fake clients ─subscribe─► their bindings
 *
 * Terms: a *replica* is one binding over one fake client. Like `@ledgerline/client`, a fake
 * client's *view* folds, with the entity type's `reduce`, the gap-free prefix of the server log it
 * has received (in version order), then its own pending entries; entries received past a gap
 * wait. A *reload* throws the binding and the client away (unflushed edits with them, like a closed tab) and binds again over the same
 * stored entries and outbox; *offline* replicas neither push nor receive.
 *
 * Invariants the suite checks, for every seed:
 * 1. Convergence: once every replica is online and drained, all replicas have identical JSON
 *    and identical versions (Yjs state vectors, Automerge heads).
 * 2. The server log agrees: folding the entity type's `reduce` over the log (from version 1,
 *    and from the latest snapshot) gives a state whose JSON equals the replicas'.
 * 3. Idempotence: a view that folds every entry twice gives the same document.
 * 4. Catch-up from the latest snapshot alone (plus the entries after it) ends identical.
 */
import type { Data, Entry, EntityType } from '@ledgerline/core'
import { SERVER_CLIENT_ID } from '@ledgerline/core'
import { describe, expect, it } from 'vitest'

/** A seeded random stream handed to adapters so their edits and actor ids are reproducible. */
export interface ContractRandom {
  /** A uniform float in [0, 1). */
  float(): number
  /** A uniform integer in [min, max]. */
  int(min: number, max: number): number
}

/** The client a binding is bound to in the contract; the shape of `CrdtClient` in each adapter. */
export interface ContractClient {
  append(
    entity: string,
    kind: string,
    data: Data,
    options?: { readonly intent?: 'fact' | undefined },
  ): Promise<Entry>
  load(entity: string): Promise<{ readonly view: unknown }>
  subscribe(entity: string, onChange: () => void): () => void
}

/** What an adapter gives the contract. `H` is its binding handle, `S` its entity state. */
export interface CrdtAdapterUnderTest<H, S = Uint8Array> {
  /** The entity type under test (made by `yjsEntity` / `automergeEntity`). */
  readonly entityType: EntityType<S>
  /** Binds a new live document to `entity`; its actor/client id comes from `random`. */
  bind(client: ContractClient, entity: string, random: ContractRandom): Promise<H>
  /** Makes one random local edit (insert, delete, set a key…). */
  edit(handle: H, random: ContractRandom): void
  /** The document as plain JSON. */
  toJSON(handle: H): unknown
  /** A canonical text of the document's version (sorted state vector / sorted heads). */
  version(handle: H): string
  /** The JSON of a state folded by the entity type's `reduce`. */
  stateToJSON(state: S): unknown
  /** Appends buffered local edits now. */
  flush(handle: H): Promise<void>
  destroy(handle: H): Promise<void>
}

export interface CrdtContractOptions {
  /** Seeds to run; each one is printed in the test name and in a failure. */
  readonly seeds?: readonly number[] | undefined
  readonly replicas?: number | undefined
  readonly steps?: number | undefined
}

/**
 * Registers the contract's tests for one adapter.
 *
 * @example
 * runCrdtAdapterContract('yjs', {
 *   entityType: yjsEntity('doc'),
 *   bind: (client, entity) => bindYDoc(client, entity),
 *   …
 * })
 */
export function runCrdtAdapterContract<H, S = Uint8Array>(
  name: string,
  adapter: CrdtAdapterUnderTest<H, S>,
  options: CrdtContractOptions = {},
): void {
  const seeds = options.seeds ?? [1, 2, 3]
  const replicas = options.replicas ?? 4
  const steps = options.steps ?? 80
  describe(`CRDT adapter contract: ${name}`, () => {
    for (const seed of seeds) {
      // Goal: invariants 1-4 above. Method: `steps` random actions (edit, flush, push, deliver,
      // go offline/online, reload, snapshot) on `replicas` replicas, then a drain.
      it(`converges under reordering, duplicates, drops, offline periods and reloads (seed ${seed})`, async () => {
        try {
          const logged = await runSeed(adapter, seed, replicas, steps)
          expect(logged, 'entries in the server log').toBeGreaterThan(0)
        } catch (error) {
          throw new Error(
            `${name} contract failed with seed ${seed}: ${error instanceof Error ? error.message : String(error)}`,
            { cause: error },
          )
        }
      })
    }

    // Goal: folding and applying every update twice changes nothing. Method: bind one replica,
    // edit, push; then bind replicas whose views fold the log once and twice.
    it('applying every update twice changes nothing', async () => {
      const random = createRandom(7)
      const type = adapter.entityType
      const server = createFakeServer(type)
      const store = createReplicaStore(0)
      const handle = await adapter.bind(createFakeClient(store, type), ENTITY, random)
      for (let i = 0; i < 20; i++) adapter.edit(handle, random)
      await adapter.flush(handle)
      pushAll(store, server)
      const once = createReplicaStore(1)
      const twice = createReplicaStore(2)
      for (const e of server.log) receive(once, e)
      for (const e of server.log) receive(twice, e)
      const a = await adapter.bind(createFakeClient(once, type), ENTITY, random)
      const b = await adapter.bind(createFakeClient(twice, type, true), ENTITY, random)
      expect(adapter.toJSON(a)).toEqual(adapter.toJSON(handle))
      expect(adapter.toJSON(b)).toEqual(adapter.toJSON(handle))
      expect(adapter.version(b)).toBe(adapter.version(a))
      expect(adapter.version(a)).toBe(adapter.version(handle))
      const doubled = [...server.log, ...server.log].reduce(
        (s, e) => type.reduce(s, e),
        type.initial,
      )
      expect(adapter.stateToJSON(doubled)).toEqual(adapter.toJSON(handle))
      for (const h of [handle, a, b]) await adapter.destroy(h)
    })
  })
}

const ENTITY = 'doc/contract'
const TENANT = 'contract'

async function runSeed<H, S>(
  adapter: CrdtAdapterUnderTest<H, S>,
  seed: number,
  replicaCount: number,
  steps: number,
): Promise<number> {
  const random = createRandom(seed)
  const server = createFakeServer(adapter.entityType)
  const replicas = Array.from({ length: replicaCount }, (_, i) => ({
    store: createReplicaStore(i),
    client: undefined as FakeClient | undefined,
    handle: undefined as H | undefined,
    online: true,
  }))
  for (const r of replicas) {
    r.client = createFakeClient(r.store, adapter.entityType)
    r.handle = await adapter.bind(r.client, ENTITY, random)
  }

  for (let step = 0; step < steps; step++) {
    const r = replicas[random.int(0, replicas.length - 1)] as (typeof replicas)[number]
    const handle = r.handle as H
    const roll = random.float()
    if (roll < 0.4) {
      const edits = random.int(1, 3)
      for (let i = 0; i < edits; i++) adapter.edit(handle, random)
      if (random.float() < 0.7) await adapter.flush(handle)
    } else if (roll < 0.55) {
      if (r.online) push(r.store, server, random)
    } else if (roll < 0.75) {
      if (r.online) deliver(r.store, server, random, r.client as FakeClient)
    } else if (roll < 0.83) {
      r.online = !r.online
    } else if (roll < 0.92) {
      // Reload: the tab closes without flushing (its unflushed edits are lost, like a crash);
      // what was appended is in the outbox and comes back with the new binding.
      ;(r.client as FakeClient).kill()
      r.client = createFakeClient(r.store, adapter.entityType)
      r.handle = await adapter.bind(r.client, ENTITY, random)
    } else {
      server.snapshot()
    }
  }

  // Drain: everyone online, flush, push and deliver until nothing moves.
  for (const r of replicas) {
    r.online = true
    await adapter.flush(r.handle as H)
  }
  for (let round = 0; round < 3; round++) {
    for (const r of replicas) pushAll(r.store, server)
    for (const r of replicas) deliverAll(r.store, server, r.client as FakeClient)
    await settle()
  }
  for (const r of replicas) await adapter.flush(r.handle as H)
  await settle()

  const json = adapter.toJSON(replicas[0]?.handle as H)
  const version = adapter.version(replicas[0]?.handle as H)
  for (const [i, r] of replicas.entries()) {
    expect(adapter.toJSON(r.handle as H), `replica ${i} JSON`).toEqual(json)
    expect(adapter.version(r.handle as H), `replica ${i} version`).toBe(version)
  }

  // The server log, folded from version 1 and from its latest snapshot, agrees.
  const folded = server.log.reduce(
    (s, e) => adapter.entityType.reduce(s, e),
    adapter.entityType.initial,
  )
  expect(adapter.stateToJSON(folded), 'server fold').toEqual(json)
  server.snapshot()
  const fromSnapshot = server.fromLatestSnapshot()
  expect(fromSnapshot[0]?.kind.endsWith('.snapshot'), 'catch-up starts at a snapshot').toBe(true)
  const catchUp = createReplicaStore(99)
  catchUp.base = (fromSnapshot[0] as Entry & { version: number }).version
  for (const e of fromSnapshot) receive(catchUp, e)
  const fresh = await adapter.bind(createFakeClient(catchUp, adapter.entityType), ENTITY, random)
  expect(adapter.toJSON(fresh), 'catch-up from snapshot').toEqual(json)
  expect(adapter.version(fresh), 'catch-up version').toBe(version)
  await adapter.destroy(fresh)
  // A snapshot as relays before `data.through` alone wrote it, with `corrects` naming the last
  // entry it covers, still reads the same (logs keep their history).
  const [snapshot, ...after] = fromSnapshot as (Entry & { version: number })[]
  const covered = server.log[(snapshot?.version ?? 1) - 2]
  const legacy = createReplicaStore(98)
  legacy.base = snapshot?.version ?? 1
  for (const e of [{ ...snapshot, corrects: covered?.id } as Entry, ...after]) receive(legacy, e)
  const old = await adapter.bind(createFakeClient(legacy, adapter.entityType), ENTITY, random)
  expect(adapter.toJSON(old), 'catch-up from a snapshot with corrects').toEqual(json)
  await adapter.destroy(old)
  for (const r of replicas) await adapter.destroy(r.handle as H)
  return server.log.length
}

// ---------------------------------------------------------------------------------------------
// The in-memory imitation of Ledgerline.

interface ReplicaStore {
  readonly clientId: string
  seq: number
  /** The first version the view folds: 1, or a snapshot's version for a catch-up from it. */
  base: number
  /** Entries received from the server log, by version (1-based position in the log). */
  readonly received: Map<number, Entry>
  /** Own entries, in clientSeq order (kept after their ack, until received back). */
  readonly own: Entry[]
  /** Own entries not yet acknowledged, in clientSeq order. */
  outbox: Entry[]
  /** The confirmed state folded so far (a real client caches it the same way). */
  folded?: { through: number; state: unknown } | undefined
}

interface FakeClient extends ContractClient {
  notify(): void
  kill(): void
}

interface FakeServer {
  readonly log: Entry[]
  append(entry: Entry): void
  snapshot(): void
  fromLatestSnapshot(): Entry[]
}

function createReplicaStore(index: number): ReplicaStore {
  return {
    clientId: (index + 1).toString(16).padStart(32, 'a'),
    seq: 0,
    base: 1,
    received: new Map(),
    own: [],
    outbox: [],
  }
}

// `twice` folds every entry twice into the view, to check that bindings are idempotent.
function createFakeClient<S>(store: ReplicaStore, type: EntityType<S>, twice = false): FakeClient {
  const listeners = new Set<() => void>()
  let alive = true
  let cached: { key: string; view: S } | undefined
  const client: FakeClient = {
    async append(entity, kind, data) {
      if (!alive) throw new Error('client closed')
      store.seq++
      const entry: Entry = {
        id: `${store.clientId}-${store.seq}`,
        tenant: TENANT,
        entity,
        kind,
        data,
        intent: 'fact',
        clientId: store.clientId,
        clientSeq: store.seq,
        hlc: `${String(store.seq).padStart(15, '0')}:00000:${store.clientId}`,
        occurredAt: store.seq,
      }
      store.own.push(entry)
      store.outbox.push(entry)
      client.notify()
      return entry
    },
    async load() {
      // confirmed: the gap-free prefix of the log in version order, folded incrementally as a
      // real client caches it; then own pending entries. Unchanged inputs give the same view.
      if (store.folded === undefined)
        store.folded = { through: store.base - 1, state: type.initial }
      const folded = store.folded as { through: number; state: S }
      const seen = new Set<string>()
      for (let v = folded.through + 1; store.received.has(v); v++) {
        const e = store.received.get(v) as Entry
        folded.state = type.reduce(folded.state, e)
        if (twice) folded.state = type.reduce(folded.state, e)
        folded.through = v
      }
      for (let v = store.base; v <= folded.through; v++) {
        seen.add((store.received.get(v) as Entry).id)
      }
      const pending = store.own.filter((e) => !seen.has(e.id))
      const key = `${folded.through}:${pending.length}`
      if (cached?.key === key) return { view: cached.view }
      let view = folded.state
      for (const e of pending) view = type.reduce(view, e)
      if (twice) for (const e of pending) view = type.reduce(view, e)
      cached = { key, view }
      return { view }
    },
    subscribe(_entity, onChange) {
      listeners.add(onChange)
      return () => listeners.delete(onChange)
    },
    notify() {
      if (!alive) return
      queueMicrotask(() => {
        for (const l of listeners) l()
      })
    },
    kill() {
      alive = false
      listeners.clear()
    },
  }
  return client
}

function createFakeServer<S>(type: EntityType<S>): FakeServer {
  const log: Entry[] = []
  const ids = new Set<string>()
  const kindPrefix = type.crdt ?? 'crdt'
  const server: FakeServer = {
    log,
    append(entry) {
      if (ids.has(entry.id)) return // permanent dedupe by entry id
      ids.add(entry.id)
      log.push({ ...entry, version: log.length + 1 } as Entry)
    },
    // Like the relay's `maybeSnapshot`: the merged state of the whole log so far, as a
    // server-made entry placed right after the last entry it covers.
    snapshot() {
      const last = log[log.length - 1]
      if (last === undefined || last.clientId === SERVER_CLIENT_ID) return
      const state = server.fromLatestSnapshot().reduce((s, e) => type.reduce(s, e), type.initial)
      server.append({
        id: `${last.id}~snapshot~0`,
        tenant: TENANT,
        entity: ENTITY,
        kind: `${kindPrefix}.snapshot`,
        data: { through: log.length, state: state as unknown as Data },
        intent: 'request',
        expect: log.length,
        clientId: SERVER_CLIENT_ID,
        clientSeq: 0,
        hlc: last.hlc,
        occurredAt: 0,
      })
    },
    fromLatestSnapshot() {
      let at = 0
      for (let i = log.length - 1; i >= 0; i--) {
        if ((log[i] as Entry).kind.endsWith('.snapshot')) {
          at = i
          break
        }
      }
      return log.slice(at)
    },
  }
  return server
}

// Pushes some of the outbox: each entry may be dropped (stays in the outbox, resent later) or
// sent twice; acknowledged entries leave the outbox.
function push(store: ReplicaStore, server: FakeServer, random: ContractRandom): void {
  const count = random.int(0, store.outbox.length)
  const acked = new Set<string>()
  for (const entry of store.outbox.slice(0, count)) {
    if (random.float() < 0.2) continue // lost on the way: no ack, resent later
    server.append(entry)
    if (random.float() < 0.2) server.append(entry) // resent after a lost ack
    if (random.float() < 0.8) acked.add(entry.id) // else the ack is lost
  }
  store.outbox = store.outbox.filter((e) => !acked.has(e.id))
}

function pushAll(store: ReplicaStore, server: FakeServer): void {
  for (const entry of store.outbox) server.append(entry)
  store.outbox = []
}

// Delivers a random subset of the log in a random order, sometimes with duplicates.
function deliver(
  store: ReplicaStore,
  server: FakeServer,
  random: ContractRandom,
  client: FakeClient,
): void {
  const picked = server.log.filter(() => random.float() < 0.5)
  for (const entry of shuffle(picked, random)) {
    receive(store, entry)
    if (random.float() < 0.1) receive(store, entry)
  }
  client.notify()
}

function deliverAll(store: ReplicaStore, server: FakeServer, client: FakeClient): void {
  for (const entry of server.log) receive(store, entry)
  client.notify()
}

function receive(store: ReplicaStore, entry: Entry & { readonly version?: number }): void {
  store.received.set(entry.version as number, entry)
}

// Lets subscriptions run (microtasks) and bindings read and apply.
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setTimeout(resolve, 0))
}

function shuffle<T>(items: readonly T[], random: ContractRandom): T[] {
  const out = [...items]
  for (let i = out.length - 1; i > 0; i--) {
    const j = random.int(0, i)
    ;[out[i], out[j]] = [out[j] as T, out[i] as T]
  }
  return out
}

/** mulberry32: a small seeded generator; enough for the contract's choices. */
function createRandom(seed: number): ContractRandom {
  let a = seed >>> 0
  const float = () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  return { float, int: (min, max) => min + Math.floor(float() * (max - min + 1)) }
}
