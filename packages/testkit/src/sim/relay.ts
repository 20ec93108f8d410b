/**
 * The simulated relay front and its server log in one simulated process, as the embedded
 * SQLite relay runs them: push → checks → group commit into the log → ack; subscribe →
 * catch-up pages → live fan-out after each commit.
 *
 * Terms: the *commit queue* holds pushes not yet in the log (they vanish in a crash); a
 * *group commit* writes every queued push in one transaction after the simulated fsync delay.
 *
 * Invariants:
 * 1. Ack after durable: an ack is sent only after `appendGroupNow` returned (unless the store's
 *    `unsyncedLastCommit` bug is on, which is what the checkers must then catch).
 * 2. A crash loses the commit queue, every connection and every subscription; the log keeps
 *    what it committed. The relay comes back after a restart delay.
 * 3. Pushes are appended in the order they arrived (one FIFO queue), so one connection's
 *    batches reach the log in the order it sent them, whatever the network did before.
 * 4. Every bad frame closes only its own connection, with the error kind's close code.
 * 5. Fan-out sends each subscription the entries of each partition past what it was sent, in
 *    offset order, never skipping one.
 */
import type { Entry } from '@ledgerline/core'
import { isClientId, validateEntry } from '@ledgerline/core'
import type {
  AckResult,
  ClientMessage,
  Cursors,
  ErrorKind,
  RelayMessage,
} from '@ledgerline/protocol'
import {
  decodeMessage,
  encodeMessage,
  ENTRY_DATA_BYTES_MAX,
  ERROR_KINDS,
  FRAME_BYTES_MAX,
  PROTOCOL_VERSION,
  PUSH_ENTRIES_MAX,
  PUSH_IN_FLIGHT_MAX,
} from '@ledgerline/protocol'
import type { CrashPoints } from './crash-points.ts'
import { SIM_PAGE_ENTRIES_MAX } from './limits.ts'
import type { MemoryLogStore } from '@ledgerline/log'
import type { SimConnection, SimNetwork } from './network.ts'
import type { Prng } from './prng.ts'
import type { SimScheduler } from './scheduler.ts'

export interface SimRelayOptions {
  readonly sched: SimScheduler
  readonly net: SimNetwork
  readonly rng: Prng
  readonly store: MemoryLogStore
  readonly points: CrashPoints
  readonly tenant: string
  /** Simulated fsync time of one group commit. */
  readonly commitDelayMsMax: number
  /** Time from a crash to the restarted relay accepting connections. */
  readonly restartDelayMsMax: number
}

export interface SimRelayStats {
  crashes: number
  pushes: number
  commits: number
  badFrames: number
  pagesSent: number
}

export interface SimRelay {
  readonly up: boolean
  crash(reason: string): void
  readonly stats: SimRelayStats
}

/**
 * @example
 * const relay = createSimRelay({ sched, net, rng, store, points, tenant: 'sim',
 *   commitDelayMsMax: 20, restartDelayMsMax: 5_000 })
 */
export function createSimRelay(options: SimRelayOptions): SimRelay {
  const { sched, net, rng, store, points, tenant } = options
  const stats: SimRelayStats = { crashes: 0, pushes: 0, commits: 0, badFrames: 0, pagesSent: 0 }
  const conns = new Map<number, ConnState>()
  let queue: Queued[] = []
  let commitTimer: number | undefined
  let up = true
  // Bumped by every crash: callbacks of an older life of the process do nothing.
  let life = 0

  const send = (state: ConnState, message: RelayMessage) => {
    if (conns.get(state.conn.id) !== state) return
    net.send(state.conn, 'server', encodeMessage(message))
  }
  const fail = (state: ConnState, kind: ErrorKind, message: string) => {
    send(state, { type: 'error', kind, message, backoffMsMin: ERROR_KINDS[kind].backoffMsMin })
    conns.delete(state.conn.id)
    net.close(state.conn, 'server')
  }
  const later = (label: string, fn: () => void) => {
    const at = life
    sched.after(rng.int(1, 2_000), label, () => {
      if (life === at) fn()
    })
  }
  const crash = (reason: string) => {
    if (!up) return
    up = false
    life++
    stats.crashes++
    sched.record(`relay crash ${reason}`)
    queue = []
    if (commitTimer !== undefined) sched.cancel(commitTimer)
    commitTimer = undefined
    conns.clear()
    net.setServer(undefined)
    net.dropServerConnections()
    store.crash()
    const at = life
    sched.after(rng.int(100, options.restartDelayMsMax), 'relay restart', () => {
      if (life !== at) return
      up = true
      net.setServer(handler)
      sched.record('relay up')
    })
  }
  const pump = (state: ConnState, sub: Sub) => {
    for (let p = 0; p < store.partitions; p++) {
      for (;;) {
        const from = sub.sent[p] as number
        const page = store.readPartitionNow(tenant, p, from, SIM_PAGE_ENTRIES_MAX)
        if (page.throughOffset <= from) break
        sub.sent[p] = page.throughOffset
        stats.pagesSent++
        send(state, {
          type: 'entries',
          sub: sub.id,
          entries: page.entries,
          cursors: cursorsOf(sub.sent),
          live: true,
        })
      }
    }
  }
  const fanOut = () => {
    for (const state of conns.values()) for (const sub of state.subs.values()) pump(state, sub)
  }
  const commit = () => {
    commitTimer = undefined
    if (queue.length === 0) return
    const action = points.hit('relay.log.beforeCommit')
    if (action === 'crash') return crash('relay.log.beforeCommit')
    if (action === 'delay') {
      commitTimer = sched.after(rng.int(1, 2_000), 'relay commit (delayed)', commit)
      return
    }
    const batch = queue
    queue = []
    if (action === 'throw') {
      for (const q of batch) fail(q.state, 'internal', 'log append failed before commit')
      return
    }
    // The model relay's one subject: no call is ever `client_taken`, so every result is a wire
    // result.
    const results = store.appendGroupNow(
      batch.map((q) => ({ tenant, items: q.items, pusher: SIM_PUSHER })),
    ) as AckResult[][]
    stats.commits++
    sched.record(`relay commit ${batch.length} calls`)
    afterCommit(batch, results)
  }
  const afterCommit = (batch: Queued[], results: AckResult[][]) => {
    const action = points.hit('relay.log.afterCommit')
    if (action === 'crash') return crash('relay.log.afterCommit')
    if (action === 'delay') return later('relay acks (delayed)', () => sendAcks(batch, results))
    if (action === 'throw') {
      for (const q of batch) fail(q.state, 'internal', 'log append failed after commit')
      return
    }
    sendAcks(batch, results)
  }
  const sendAcks = (batch: Queued[], results: AckResult[][]) => {
    batch.forEach((q, i) =>
      send(q.state, {
        type: 'ack',
        batch: q.batch,
        first: 0,
        results: results[i] ?? [],
        done: true,
      }),
    )
    const action = points.hit('relay.fanout.afterCommit')
    if (action === 'crash') return crash('relay.fanout.afterCommit')
    if (action === 'delay') return later('relay fan-out (delayed)', fanOut)
    fanOut()
  }
  const enqueue = (q: Queued) => {
    queue.push(q)
    if (commitTimer === undefined) {
      commitTimer = sched.after(rng.int(1, options.commitDelayMsMax), 'relay commit', commit)
    }
  }
  const onPush = (state: ConnState, batch: number, entries: readonly Entry[]) => {
    stats.pushes++
    const items = entries.map((entry) => ({ entry }))
    const action = points.hit('relay.push.beforeAppend')
    if (action === 'crash') return crash('relay.push.beforeAppend')
    if (action === 'throw') return fail(state, 'internal', 'push failed before append')
    if (action === 'delay') {
      // A delayed push may be overtaken by the connection's next one: the log then refuses the
      // later entries with `seq_gap` and the client resends in order.
      return later('relay push (delayed)', () => {
        if (conns.get(state.conn.id) === state) enqueue({ state, batch, items })
      })
    }
    enqueue({ state, batch, items })
  }
  const onMessage = (state: ConnState, message: ClientMessage) => {
    // The decoder returns any message type; a client may only send client messages.
    if (state.clientId === undefined) {
      if (message.type !== 'hello') return fail(state, 'hello_required', 'send hello first')
      if (message.protocol !== PROTOCOL_VERSION) {
        return fail(state, 'unsupported_protocol', `protocol ${message.protocol}`)
      }
      if (!isClientId(message.clientId)) return fail(state, 'bad_message', 'bad clientId')
      state.clientId = message.clientId
      send(state, {
        type: 'welcome',
        protocol: PROTOCOL_VERSION,
        tenant,
        subject: 'sim',
        role: 'head_office',
        grants: { read: ['*'], write: ['*'] },
        log: { id: 'sim', generation: 1 },
        limits: {
          pushEntriesMax: PUSH_ENTRIES_MAX,
          pushBytesMax: FRAME_BYTES_MAX,
          entryDataBytesMax: ENTRY_DATA_BYTES_MAX,
          pushInFlightMax: PUSH_IN_FLIGHT_MAX,
        },
        partitions: store.partitions,
        clientSeqHigh: store.clientNow(tenant, message.clientId).high,
        serverTime: sched.now(),
        expiresAt: sched.now() + 24 * 60 * 60 * 1000,
      })
      return
    }
    switch (message.type) {
      case 'push': {
        for (const entry of message.entries) {
          try {
            validateEntry(entry)
          } catch (error) {
            return fail(state, 'bad_message', String(error))
          }
          if (entry.clientId !== state.clientId || entry.tenant !== tenant) {
            return fail(state, 'forbidden', 'entry of another client or tenant')
          }
        }
        return onPush(state, message.batch, message.entries)
      }
      case 'subscribe': {
        const sub: Sub = { id: message.sub, sent: [] }
        for (let p = 0; p < store.partitions; p++) sub.sent.push(message.cursors[p] ?? 0)
        state.subs.set(message.sub, sub)
        return pump(state, sub)
      }
      case 'ping':
        return send(state, { type: 'pong', t: message.t })
      case 'credit':
      case 'pong':
        return
      case 'hello':
        return fail(state, 'bad_message', 'hello twice')
      default:
        return fail(state, 'bad_message', 'a client does not send this message type')
    }
  }
  const handler = {
    frame(conn: SimConnection, bytes: Uint8Array) {
      let state = conns.get(conn.id)
      if (state === undefined) {
        if (!net.isOpen(conn)) return
        state = { conn, clientId: undefined, subs: new Map() }
        conns.set(conn.id, state)
      }
      let message: ClientMessage
      try {
        message = decodeMessage(bytes) as ClientMessage
      } catch (error) {
        stats.badFrames++
        return fail(state, 'bad_message', String(error))
      }
      onMessage(state, message)
    },
    closed(conn: SimConnection) {
      conns.delete(conn.id)
    },
  }
  net.setServer(handler)
  return {
    get up() {
      return up
    },
    crash,
    stats,
  }
}

const SIM_PUSHER = { subject: 'sim', grants: { read: ['*'], write: ['*'] } }

interface ConnState {
  readonly conn: SimConnection
  clientId: string | undefined
  readonly subs: Map<number, Sub>
}

interface Sub {
  readonly id: number
  /** Per partition, the offset up to which this subscription was sent entries. */
  readonly sent: number[]
}

interface Queued {
  readonly state: ConnState
  readonly batch: number
  readonly items: readonly { readonly entry: Entry }[]
}

function cursorsOf(sent: readonly number[]): Cursors {
  const cursors: Record<number, number> = {}
  sent.forEach((offset, p) => {
    cursors[p] = offset
  })
  return cursors
}
