/**
 * The sync loop of the simulated client (`client.ts`): its connection over the simulated
 * network, pushes of the outbox, acks and pages stored through the client's transactions.
 *
 * Terms: as in `client.ts`. The loop's state (connection, batches in flight, cursors seen) is
 * volatile: a crash drops it and a restart rebuilds it from the local database.
 *
 *   sync   ─► hello ─► welcome ─► subscribe(cursors) + push(outbox in seq order, ≤ 4 in flight)
 *   ack    ─► [tx: delete outbox records, keep decisions]        seq_gap ─► reconnect, resend
 *   page   ─► check offsets follow the cursor ─► [tx: put entries, advance cursor]
 *
 * Invariants:
 * 1. An outbox record is deleted only by the transaction that stores its ack (guarantee 2);
 *    a `seq_gap` refusal keeps it for resending.
 * 2. Pages are stored only when their offsets follow the stored cursor exactly, and in the order
 *    they arrived (one transaction queue; a delay waits inside it); a gap or a reordered page
 *    makes the client reconnect and resubscribe from its cursors. (The first version delayed
 *    a page outside the queue: a later page then moved the cursor first, and a crash in
 *    between lost the delayed page for good. Seed 15 found it.)
 */
import type { Entry, HlcClock, StoredEntry } from '@ledgerline/core'
import type { AckResult, Message } from '@ledgerline/protocol'
import { decodeMessage, encodeMessage, PROTOCOL_VERSION } from '@ledgerline/protocol'
import type { LocalDb, SimClientOptions, SimClientStats } from './client.ts'
import { SIM_ACK_TIMEOUT_MS, SIM_PUSH_ENTRIES_MAX, SIM_PUSH_IN_FLIGHT_MAX } from './limits.ts'
import type { ConnectionHandler, SimConnection } from './network.ts'

/** What the sync loop uses of its client. */
export interface ClientSyncOptions extends Pick<
  SimClientOptions,
  'name' | 'sched' | 'net' | 'rng' | 'points' | 'history' | 'bugs'
> {
  readonly db: LocalDb
  readonly stats: SimClientStats
  /** The client's hybrid logical clock of this life (pages' stamps are merged into it). */
  readonly clock: () => HlcClock
  readonly crashed: () => boolean
  /** Wraps a callback so that it does nothing once its life is over. */
  readonly alive: (fn: () => void) => () => void
  /** One transaction of the client's queue: `apply` at completion, then `then`. */
  readonly tx: <R>(
    label: string,
    apply: () => R,
    then: (result: R) => void,
    delayMs?: number,
  ) => void
  readonly crash: (reason: string) => void
}

export interface ClientSync {
  /** A welcome was received and not lost since. */
  readonly ready: boolean
  /** Dials unless crashed, offline or connected. */
  connect(): void
  /** Pushes outbox records not yet sent, up to the in-flight bound. */
  pushMore(): void
  setOnline(online: boolean): void
  /** The client crashed: its connection closes and its reconnect timer stops. */
  crashed(): void
  /** The client restarts: the volatile state is rebuilt from the local database. */
  restarted(): void
}

/** The sync loop of one simulated client; it dials only when told (`connect`). */
export function createClientSync(options: ClientSyncOptions): ClientSync {
  const { name, sched, net, rng, points, history, db, stats, alive, tx, crash } = options
  const clientId = db.clientId
  let online = true
  let conn: SimConnection | undefined
  let ready = false
  let reconnectTimer: number | undefined
  let backoffMs = 100
  let sub = 0
  let batchSeq = 0
  let sentUpTo = 0
  let inFlight = new Map<number, readonly number[]>()
  let cursorsSeen: number[] = [...db.cursors]

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
    if (options.crashed() || !online || reconnectTimer !== undefined) return
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
    if (options.crashed() || !online || conn !== undefined) return
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
              // Invariant 1: kept for resending.
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
  /** Invariant 2: only pages that follow the cursors seen, stored in arrival order. */
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
              options.clock().receive(e.hlc)
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
      if (options.crashed() || c !== conn) return
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
      if (options.crashed() || c !== conn) return
      lostConnection()
    },
  }

  return {
    get ready() {
      return ready
    },
    connect,
    pushMore,
    setOnline(on) {
      if (online === on) return
      online = on
      net.setPartitioned(name, !on)
      if (on) {
        backoffMs = 100
        connect()
      }
    },
    crashed() {
      if (conn !== undefined) net.close(conn, 'client')
      conn = undefined
      ready = false
      if (reconnectTimer !== undefined) sched.cancel(reconnectTimer)
      reconnectTimer = undefined
    },
    restarted() {
      inFlight = new Map()
      sentUpTo = 0
      cursorsSeen = [...db.cursors]
      backoffMs = 100
    },
  }
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
