/**
 * A simulated Ledgerline client: durable local storage with a transaction model like
 * IndexedDB's, an outbox, a sync loop over the simulated network, cursors and confirmed state.
 *
 * Terms: the *local database* is what survives a crash; *transactions* run one at a time (like
 * IndexedDB readwrite transactions over the same stores) and apply their writes atomically when
 * they complete; a crash discards every transaction not yet complete. A *life* is the time
 * between two crashes: callbacks from an older life do nothing.
 *
 * One unit on purpose (over 500 lines): it is the MODEL client of the simulation, a single
 * closure whose transaction queue, life counter and sync loop share state, and it is due to be
 * retired once the simulation drives the real client; splitting it now would only spread that
 * shared state over files that are about to go.
 *
 *   append ─► [tx: seq = next++, put entry, put outbox] ─► resolve
 *   sync   ─► hello ─► welcome ─► subscribe(cursors) + push(outbox in seq order, ≤ 4 in flight)
 *   ack    ─► [tx: delete outbox records, keep decisions]        seq_gap ─► reconnect, resend
 *   page   ─► check offsets follow the cursor ─► [tx: put entries, advance cursor]
 *
 * Invariants:
 * 1. An entry and its outbox record are written by one transaction: a crash leaves both or
 *    neither (guarantee 1).
 * 2. clientSeq is allocated inside that transaction, so it is gap-free and a number is reused
 *    only when the transaction that took it never completed (and so never escaped).
 * 3. An outbox record is deleted only by the transaction that stores its ack (guarantee 2);
 *    a `seq_gap` refusal keeps it for resending.
 * 4. Pages are stored only when their offsets follow the stored cursor exactly, and in the order
 *    they arrived (one transaction queue; a delay waits inside it); a gap or a reordered page
 *    makes the client reconnect and resubscribe from its cursors. (The first version delayed
 *    a page outside the queue: a later page then moved the cursor first, and a crash in
 *    between lost the delayed page for good. Seed 15 found it.)
 * 5. The hybrid logical clock is restored from the last stamp stored, so stamps stay increasing
 *    across crashes and backward clock jumps.
 */
import type { Data, Entry, HlcClock, Intent, StoredEntry } from '@ledgerline/core'
import { confirmed as foldConfirmed, createClientId, createHlcClock, view } from '@ledgerline/core'
import type { Schema } from '@ledgerline/core'
import type { AckResult, Message } from '@ledgerline/protocol'
import { decodeMessage, encodeMessage, PROTOCOL_VERSION } from '@ledgerline/protocol'
import type { CrashPoints } from './crash-points.ts'
import type { SimHistory } from './history.ts'
import { SIM_ACK_TIMEOUT_MS, SIM_PUSH_ENTRIES_MAX, SIM_PUSH_IN_FLIGHT_MAX } from './limits.ts'
import type { ConnectionHandler, SimConnection, SimNetwork } from './network.ts'
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
  let online = true
  // Volatile state of one life, rebuilt from `db` on restart.
  let clock: HlcClock = createHlcClock(clientId, wall)
  let txQueue: Tx[] = []
  let txRunning = false
  let conn: SimConnection | undefined
  let ready = false
  let reconnectTimer: number | undefined
  let backoffMs = 100
  let sub = 0
  let batchSeq = 0
  let sentUpTo = 0
  let inFlight = new Map<number, readonly number[]>()
  let cursorsSeen: number[] = [...db.cursors]

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
  const send = (message: Message) => {
    if (conn !== undefined) net.send(conn, 'client', encodeMessage(message))
  }
  const dropConnection = (why: string) => {
    if (conn === undefined) return
    sched.record(`${name} drop ${why}`)
    net.close(conn, 'client')
    lostConnection()
  }
  const lostConnection = () => {
    conn = undefined
    ready = false
    inFlight = new Map()
    sentUpTo = 0
    scheduleReconnect()
  }
  const scheduleReconnect = () => {
    if (crashed || !online || reconnectTimer !== undefined) return
    backoffMs = Math.min(backoffMs * 2, 60_000)
    const delay = rng.int(Math.floor(backoffMs / 2), backoffMs)
    reconnectTimer = sched.after(
      delay,
      `${name} reconnect`,
      alive(() => {
        reconnectTimer = undefined
        connect()
      }),
    )
  }
  const connect = () => {
    if (crashed || !online || conn !== undefined) return
    stats.reconnects++
    const opened = net.open(name, handler)
    if (opened === undefined) return scheduleReconnect()
    conn = opened
    send({ type: 'hello', protocol: PROTOCOL_VERSION, token: 'sim', clientId })
  }
  const pushMore = () => {
    if (!ready || conn === undefined) return
    while (inFlight.size < SIM_PUSH_IN_FLIGHT_MAX) {
      const seqs: number[] = []
      for (const seq of db.outbox.keys()) {
        if (seq <= sentUpTo) continue
        seqs.push(seq)
        if (seqs.length >= SIM_PUSH_ENTRIES_MAX) break
      }
      if (seqs.length === 0) return
      const batch = ++batchSeq
      inFlight.set(batch, seqs)
      sentUpTo = seqs[seqs.length - 1] as number
      const entries = seqs.map((seq) => db.own.get(seq) as Entry)
      send({ type: 'push', batch, entries })
      const sentOn = conn
      sched.after(
        SIM_ACK_TIMEOUT_MS,
        `${name} ack timeout`,
        alive(() => {
          if (conn === sentOn && inFlight.has(batch)) dropConnection('ack timeout')
        }),
      )
      if (options.bugs?.deleteOutboxOnSend === true) {
        tx(
          'outbox delete on send (bug)',
          () => {
            for (const seq of seqs) db.outbox.delete(seq)
          },
          () => {},
        )
      }
      const action = points.hit('client.push.afterSend')
      if (action === 'crash') return crash('client.push.afterSend')
    }
  }
  const onAck = (batch: number, results: readonly AckResult[]) => {
    if (!inFlight.delete(batch)) return
    for (const result of results) history.acks.push({ client: name, result })
    const store = (delayMs: number) =>
      tx(
        'ack',
        () => {
          let gap = false
          for (const result of results) {
            const seq = seqOf(clientId, result.id)
            if (result.status === 'refused' && result.code === 'seq_gap') {
              gap = true
              continue
            }
            // Not decided (protocol 2): the record stays and goes again on the next connection.
            if (result.status === 'deferred' || result.status === 'id_conflict') continue
            db.outbox.delete(seq)
            db.decisions.set(result.id, result)
          }
          return gap
        },
        (gap) => {
          if (gap) {
            stats.seqGaps++
            return dropConnection('seq_gap')
          }
          backoffMs = 100
          pushMore()
        },
        delayMs,
      )
    // A delay holds the transaction in the queue, so later acks and pages wait behind it: storing
    // a later page first would move the cursor past entries a crash could then lose.
    const action = points.hit('client.ack.beforeDelete')
    if (action === 'crash') return crash('client.ack.beforeDelete')
    store(action === 'delay' ? rng.int(1, 2_000) : 0)
  }
  const onEntries = (subId: number, entries: readonly StoredEntry[]) => {
    if (subId !== sub) return
    const next = [...cursorsSeen]
    for (const e of entries) {
      const at = next[e.partition]
      if (at === undefined) return dropConnection('page for an unknown partition')
      if (e.offset <= at) continue
      if (e.offset !== at + 1) {
        stats.gapsSeen++
        return dropConnection(`gap in partition ${e.partition}`)
      }
      next[e.partition] = e.offset
    }
    const fresh = entries.filter((e) => e.offset > (cursorsSeen[e.partition] as number))
    if (fresh.length === 0) return
    cursorsSeen = next
    const store = (delayMs: number) =>
      tx(
        'page',
        () => {
          for (const e of fresh) {
            let ledger = db.confirmed.get(e.entity)
            if (ledger === undefined) {
              ledger = new Map()
              db.confirmed.set(e.entity, ledger)
            }
            ledger.set(e.version, e)
            db.cursors[e.partition] = Math.max(db.cursors[e.partition] as number, e.offset)
            try {
              clock.receive(e.hlc)
            } catch {
              // A stamp too far ahead is not merged; the entry is still stored.
            }
          }
        },
        () => {},
        delayMs,
      )
    const action = points.hit('client.page.beforeTx')
    if (action === 'crash') return crash('client.page.beforeTx')
    store(action === 'delay' ? rng.int(1, 2_000) : 0)
  }
  const handler: ConnectionHandler = {
    frame(c, bytes) {
      if (crashed || c !== conn) return
      let message: Message
      try {
        message = decodeMessage(bytes)
      } catch {
        return dropConnection('bad frame')
      }
      switch (message.type) {
        case 'welcome':
          ready = true
          sub++
          cursorsSeen = [...db.cursors]
          send({ type: 'subscribe', sub, scope: ['*'], cursors: cursorsOf(db.cursors), credit: 8 })
          return pushMore()
        case 'ack':
          return onAck(message.batch, message.results)
        case 'entries':
          return onEntries(message.sub, message.entries)
        case 'error':
          sched.record(`${name} error ${message.kind}`)
          return dropConnection(`error ${message.kind}`)
        default:
          return
      }
    },
    closed(c) {
      if (crashed || c !== conn) return
      lostConnection()
    },
  }
  const crash = (reason: string) => {
    if (crashed) return
    crashed = true
    life++
    stats.crashes++
    sched.record(`${name} crash ${reason}`)
    if (conn !== undefined) net.close(conn, 'client')
    conn = undefined
    ready = false
    txQueue = []
    txRunning = false
    if (reconnectTimer !== undefined) sched.cancel(reconnectTimer)
    reconnectTimer = undefined
    const at = life
    sched.after(rng.int(100, options.restartDelayMsMax), `${name} restart`, () => {
      if (life !== at) return
      crashed = false
      clock = createHlcClock(clientId, wall, db.hlcLast === undefined ? {} : { last: db.hlcLast })
      inFlight = new Map()
      sentUpTo = 0
      cursorsSeen = [...db.cursors]
      backoffMs = 100
      sched.record(`${name} restart`)
      connect()
    })
  }
  const appendNow = (request: AppendRequest, done: (outcome: AppendOutcome) => void) => {
    tx(
      'append',
      () => {
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
          pushMore()
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
      return ready
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
      if (online === on) return
      online = on
      net.setPartitioned(name, !on)
      if (on) {
        backoffMs = 100
        connect()
      }
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
  sched.after(0, `${name} start`, alive(connect))
  return client
}

interface Tx {
  readonly label: string
  /** Extra time before the transaction completes (a crash point's delay). */
  readonly delayMs: number
  readonly run: () => void
}

function seqOf(clientId: string, id: string): number {
  return Number(id.slice(clientId.length + 1))
}

function cursorsOf(cursors: readonly number[]): Record<number, number> {
  const out: Record<number, number> = {}
  cursors.forEach((offset, p) => {
    out[p] = offset
  })
  return out
}
