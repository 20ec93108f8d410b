/**
 * A simulated Ledgerline client: durable local storage with a transaction model like
 * IndexedDB's, an outbox, a sync loop over the simulated network (`client-sync.ts`), cursors
 * and confirmed state.
 *
 * Terms: the *local database* is what survives a crash; *transactions* run one at a time (like
 * IndexedDB readwrite transactions over the same stores) and apply their writes atomically when
 * they complete; a crash discards every transaction not yet complete. A *life* is the time
 * between two crashes: callbacks from an older life do nothing.
 *
 * It is the MODEL client of the simulation, due to be retired once the simulation drives the
 * real client. This file keeps the local database, its transactions, appends and crashes; the
 * connection, pushes, acks and pages are `client-sync.ts`, which shares the transaction queue
 * and the life through the options it is given.
 *
 *   append ─► [tx: seq = next++, put entry, put outbox] ─► resolve
 *   sync   ─► `client-sync.ts`: hello, subscribe, push; acks and pages stored by transactions
 *
 * Invariants:
 * 1. An entry and its outbox record are written by one transaction: a crash leaves both or
 *    neither (guarantee 1).
 * 2. clientSeq is allocated inside that transaction, so it is gap-free and a number is reused
 *    only when the transaction that took it never completed (and so never escaped).
 * 3. The hybrid logical clock is restored from the last stamp stored, so stamps stay increasing
 *    across crashes and backward clock jumps.
 *
 * The sync loop's own invariants (outbox records deleted only with their ack, pages stored only
 * in order) are in `client-sync.ts`.
 */
import type { Data, Entry, HlcClock, Intent, StoredEntry } from '@ledgerline/core'
import { confirmed as foldConfirmed, createClientId, createHlcClock, view } from '@ledgerline/core'
import type { Schema } from '@ledgerline/core'
import type { AckResult } from '@ledgerline/protocol'
import { createClientSync } from './client-sync.ts'
import type { CrashPoints } from './crash-points.ts'
import type { SimHistory } from './history.ts'
import type { SimNetwork } from './network.ts'
import type { Prng } from './prng.ts'
import type { SimScheduler } from './scheduler.ts'

/** Wall-clock time of simulated time 0: 2026-01-01, so stamps look real. */
export const SIM_EPOCH_MS = Date.UTC(2026, 0, 1)

export interface SimClientBugs {
  /** Delete outbox records when a push is sent instead of when it is acknowledged. */
  readonly deleteOutboxOnSend?: boolean | undefined
}

export interface SimClientOptions {
  readonly name: string
  readonly sched: SimScheduler
  readonly net: SimNetwork
  readonly rng: Prng
  readonly points: CrashPoints
  readonly history: SimHistory
  readonly schema: Schema
  readonly tenant: string
  readonly partitions: number
  /** This client's wall clock minus simulated time. */
  readonly skewMs: number
  readonly txDelayMsMax: number
  readonly restartDelayMsMax: number
  readonly bugs?: SimClientBugs | undefined
}

export interface AppendRequest {
  readonly entity: string
  readonly kind: string
  readonly data: Data
  readonly intent: Intent
  /** Requests: set `expect` to the entity's confirmed version when the transaction runs. */
  readonly expectConfirmed?: boolean | undefined
  readonly corrects?: string | undefined
}

export type AppendOutcome =
  | { readonly _tag: 'ok'; readonly entry: Entry }
  | { readonly _tag: 'failed' }

/** The client's durable state (its IndexedDB). */
export interface LocalDb {
  readonly clientId: string
  nextSeq: number
  hlcLast: string | undefined
  readonly own: Map<number, Entry>
  /** Outbox records by clientSeq; insertion order is clientSeq order. */
  readonly outbox: Map<number, true>
  /** Confirmed entries per entity, by version. */
  readonly confirmed: Map<string, Map<number, StoredEntry>>
  readonly cursors: number[]
  /** The relay's answer for own entries. */
  readonly decisions: Map<string, AckResult>
}

export interface SimClientStats {
  crashes: number
  appendsStarted: number
  appendsResolved: number
  appendsFailed: number
  reconnects: number
  gapsSeen: number
  seqGaps: number
}

export interface SimClient {
  readonly name: string
  readonly db: LocalDb
  readonly crashed: boolean
  readonly connected: boolean
  append(request: AppendRequest, done?: (outcome: AppendOutcome) => void): void
  setOnline(online: boolean): void
  /** Moves this client's wall clock by `deltaMs` (negative: the clock jumps back). */
  jumpClock(deltaMs: number): void
  crash(reason: string): void
  /** Confirmed state and version of an entity, folded from the local database. */
  confirmedOf(entity: string): { state: unknown; version: number }
  /** Confirmed then own pending entries. */
  viewOf(entity: string): unknown
  readonly stats: SimClientStats
}

/**
 * @example
 * const c = createSimClient({ name: 'c1', sched, net, rng: rng.fork('c1'), points, history,
 *   schema, tenant: 'sim', partitions: 4, skewMs: 0, txDelayMsMax: 5, restartDelayMsMax: 60_000 })
 * c.append({ entity: 'counter/visits', kind: 'counter.added', data: { n: 1 }, intent: 'fact' })
 */
export function createSimClient(options: SimClientOptions): SimClient {
  const { name, sched, net, rng, points, history, schema, tenant, partitions } = options
  const idBytes = new Uint8Array(16)
  rng.fill(idBytes)
  const clientId = createClientId((b) => b.set(idBytes.subarray(0, b.length)))
  const db: LocalDb = {
    clientId,
    nextSeq: 1,
    hlcLast: undefined,
    own: new Map(),
    outbox: new Map(),
    confirmed: new Map(),
    cursors: Array.from({ length: partitions }, () => 0),
    decisions: new Map(),
  }
  const stats: SimClientStats = {
    crashes: 0,
    appendsStarted: 0,
    appendsResolved: 0,
    appendsFailed: 0,
    reconnects: 0,
    gapsSeen: 0,
    seqGaps: 0,
  }
  let skewMs = options.skewMs
  const wall = () => SIM_EPOCH_MS + sched.now() + skewMs
  let life = 0
  let crashed = false
  // Volatile state of one life, rebuilt from `db` on restart.
  let clock: HlcClock = createHlcClock(clientId, wall)
  let txQueue: Tx[] = []
  let txRunning = false

  const alive = (fn: () => void) => {
    const at = life
    return () => {
      if (life === at && !crashed) fn()
    }
  }
  /** Runs `apply` as one transaction: atomically at completion, or never if the client crashes. */
  const tx = <R>(label: string, apply: () => R, then: (result: R) => void, delayMs = 0) => {
    txQueue.push({ label, delayMs, run: () => then(apply()) })
    if (!txRunning) nextTx()
  }
  const nextTx = () => {
    const t = txQueue.shift()
    if (t === undefined) {
      txRunning = false
      return
    }
    txRunning = true
    sched.after(
      rng.int(1, options.txDelayMsMax),
      `${name} tx ${t.label}`,
      alive(() => {
        t.run()
        nextTx()
      }),
    )
  }
  const sync = createClientSync({
    name,
    sched,
    net,
    rng,
    points,
    history,
    db,
    stats,
    bugs: options.bugs,
    clock: () => clock,
    crashed: () => crashed,
    alive,
    tx,
    crash: (reason) => crash(reason),
  })
  const crash = (reason: string) => {
    if (crashed) return
    crashed = true
    life++
    stats.crashes++
    sched.record(`${name} crash ${reason}`)
    sync.crashed()
    txQueue = []
    txRunning = false
    const at = life
    sched.after(rng.int(100, options.restartDelayMsMax), `${name} restart`, () => {
      if (life !== at) return
      crashed = false
      // Invariant 3.
      clock = createHlcClock(clientId, wall, db.hlcLast === undefined ? {} : { last: db.hlcLast })
      sync.restarted()
      sched.record(`${name} restart`)
      sync.connect()
    })
  }
  const appendNow = (request: AppendRequest, done: (outcome: AppendOutcome) => void) => {
    tx(
      'append',
      () => {
        // Invariants 1 and 2: the seq, the entry and its outbox record in one transaction.
        const seq = db.nextSeq++
        const hlc = clock.tick()
        db.hlcLast = hlc
        const version = db.confirmed.get(request.entity)?.size ?? 0
        const entry: Entry = {
          id: `${clientId}-${seq}`,
          tenant,
          entity: request.entity,
          kind: request.kind,
          data: request.data,
          intent: request.intent,
          ...(request.expectConfirmed === true ? { expect: version } : {}),
          ...(request.corrects === undefined ? {} : { corrects: request.corrects }),
          clientId,
          clientSeq: seq,
          hlc,
          occurredAt: Math.max(0, wall()),
        }
        db.own.set(seq, entry)
        db.outbox.set(seq, true)
        if (history.committed.has(entry.id)) history.reused.push(entry.id)
        history.committed.set(entry.id, { client: name, entry })
        return entry
      },
      (entry) => {
        const resolve = () => {
          history.resolved.add(entry.id)
          stats.appendsResolved++
          done({ _tag: 'ok', entry })
          sync.pushMore()
        }
        const action = points.hit('client.append.afterTx')
        if (action === 'crash') return crash('client.append.afterTx')
        if (action === 'delay') {
          sched.after(rng.int(1, 2_000), `${name} resolve (delayed)`, alive(resolve))
          return
        }
        resolve()
      },
    )
  }
  const client: SimClient = {
    name,
    db,
    get crashed() {
      return crashed
    },
    get connected() {
      return sync.ready
    },
    append(request, done = () => {}) {
      if (crashed) return done({ _tag: 'failed' })
      stats.appendsStarted++
      const action = points.hit('client.append.beforeTx')
      if (action === 'crash') return crash('client.append.beforeTx')
      if (action === 'throw') {
        stats.appendsFailed++
        return done({ _tag: 'failed' })
      }
      if (action === 'delay') {
        sched.after(
          rng.int(1, 2_000),
          `${name} append (delayed)`,
          alive(() => appendNow(request, done)),
        )
        return
      }
      appendNow(request, done)
    },
    setOnline(on) {
      sync.setOnline(on)
    },
    jumpClock(deltaMs) {
      skewMs += deltaMs
      sched.record(`${name} clock ${deltaMs}`)
    },
    crash,
    confirmedOf(entity) {
      const type = schema.typeOf(entity)
      const ledger = db.confirmed.get(entity)
      const entries = ledger === undefined ? [] : [...ledger.values()]
      return { state: foldConfirmed(type, entries), version: entries.length }
    },
    viewOf(entity) {
      const type = schema.typeOf(entity)
      const pending = [...db.outbox.keys()]
        .map((seq) => db.own.get(seq) as Entry)
        .filter((e) => e.entity === entity)
      return view(type, client.confirmedOf(entity).state, pending)
    },
    stats,
  }
  sched.after(0, `${name} start`, alive(sync.connect))
  return client
}

interface Tx {
  readonly label: string
  /** Extra time before the transaction completes (a crash point's delay). */
  readonly delayMs: number
  readonly run: () => void
}
