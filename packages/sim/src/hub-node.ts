/**
 * A store hub process of the simulation: the real hub (`createHub` from `@ledgerline/relay`:
 * its SQLite file of mirror and store queue, the forwarder, the store layer, the upstream link)
 * and the real `Session` for every register that connects, with `SessionHub` as the relay wires
 * it. Its upstream link dials head office (or the primary hub, for a backup) over the simulated
 * wire with the hub's own token (a forward grant), on the hub's life's timers and clock.
 *
 * Terms: an *incarnation* is one run of the hub process (one `Life`); its *disk* is the data
 * directory (`hub.sqlite`), which outlives incarnations unless the hub is lost with it.
 *
 *   wire accept (host) ─► createSession(socket, { store: hub.store, hub: hub.session, … })
 *   hub.store.onCommit ─► tails, sessions          hub.onUpstream ─► every session's onUpstream
 *   hub.link ─► wire.socketClass(`${name}>up`, life, …, wan) ─► head office's sessions
 *
 * Invariants:
 * 1. A crash keeps only what the hub's SQLite committed: the file is closed under the store
 *    (better-sqlite3 runs each transaction inside one event, so none is open between events),
 *    the incarnation's timers die, every connection breaks (registers', and the upstream link,
 *    which head office hears of late or soon as the wire says); the next incarnation opens the
 *    same file, with the same upstream clientId.
 * 2. A hub lost with its disk starts again (if it does) on an empty directory: a new upstream
 *    clientId, no mirror, no queue; registers still hold every entry head office has not
 *    confirmed, and resend it.
 * 3. Everything the hub does runs on the loop: its timers are its life's, its randomness the
 *    seed's, its token check the real one as a barrier (`simTokenCheck`).
 * 4. A hub that forwards one entry more than `SIM_FORWARDS_PER_MINUTE_MAX` times within a
 *    simulated minute halts the run (a hot loop: head office's answers are not waited on).
 */
import { existsSync, mkdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { pino } from 'pino'
import {
  createCommitQueue,
  createFanoutTails,
  createHub,
  createRelayGates,
  createSession,
  RELAY_LIMITS_DEFAULT,
} from '@ledgerline/relay'
import type { Hub, Session, SessionContext } from '@ledgerline/relay'
import { decodeMessage } from '@ledgerline/protocol'
import type { Prng, SimScheduler } from '@ledgerline/testkit'
import { SIM_EPOCH_MS, SIM_FORWARDS_PER_MINUTE_MAX } from './limits.ts'
import { NO_METRICS, simTokenCheck } from './relay-node.ts'
import type { Life, SimLoop } from './sim-loop.ts'
import { createLife } from './sim-loop.ts'
import { frameNote } from './trace-notes.ts'
import type { Wire } from './wire.ts'
import type { WireTap } from './wire-ends.ts'

export interface HubNodeOptions {
  readonly loop: SimLoop
  readonly wire: Wire
  /** `hub-1`: the hub's name in the trace, and its token subject. */
  readonly name: string
  /** The host registers dial (`hub-1.sim`). */
  readonly host: string
  /** The hub's data directory (the caller removes its parent). */
  readonly dir: string
  readonly secret: string
  /** Where the upstream link dials, in order (head office; or the primary hub, then it). */
  readonly upstream: readonly string[]
  /** The hub's token, asked with the token server's clock. */
  readonly token: () => string
  /** The store's internet line the link runs over to head office (`wire.ts` invariant 3). */
  readonly wan: string
  readonly rng: Prng
}

export interface HubNode {
  readonly name: string
  readonly url: string
  /** The upstream link's wire name (`${name}>up`): its faults and partitions. */
  readonly uplink: string
  /** Starts an incarnation (the first one, or after a crash). */
  start(): void
  /** The process dies now (invariant 1). */
  crash(): void
  /** The process dies and its disk is gone (invariant 2); `start` begins on an empty one. */
  loseDisk(): void
  readonly up: boolean
  /** Entries in the store queue head office has not confirmed (0 while down). */
  openCount(): number
  /** Whether the upstream link is up now. */
  linked(): boolean
  close(): Promise<void>
  readonly stats: { crashes: number; incarnations: number; sessions: number; disksLost: number }
}

/**
 * @example
 * const hub = createHubNode({ loop, wire, name: 'hub-1', host: 'hub-1.sim', dir, secret,
 *   upstream: ['wss://relay.sim/sync'], token, wan: 'store-wan', rng })
 * hub.start()
 */
export function createHubNode(options: HubNodeOptions): HubNode {
  const { loop, wire, name } = options
  const sched: SimScheduler = loop.sched
  const now = () => SIM_EPOCH_MS + Math.floor(sched.now())
  const random = options.rng.fork('random')
  const uplink = `${name}>up`
  const logger = pino({ level: process.env.LEDGERLINE_SIM_LOG ?? 'silent' })
  const sessions = new Set<Session>()
  const stats = { crashes: 0, incarnations: 0, sessions: 0, disksLost: 0 }
  let life: Life | undefined
  let hub: Hub | undefined
  let stops: (() => void)[] = []
  /** Invariant 4: when each entry was last forwarded, at most the bound's worth per id. */
  const forwardedAt = new Map<string, number[]>()
  // Trace notes of the upstream link's frames, as a till's (`trace-notes.ts`; never hashed).
  const linkNotes: WireTap = {
    sent: (_link, bytes) => {
      const message = decodeMessage(bytes)
      sched.note(() => frameNote(uplink, 'sent', message))
      if (message.type === 'push') for (const e of message.entries) forwarded(e.id)
    },
    toClient: (_link, bytes) => sched.note(() => frameNote(uplink, 'got', decodeMessage(bytes))),
  }
  const forwarded = (id: string) => {
    const times = forwardedAt.get(id) ?? []
    times.push(sched.now())
    if (times.length > SIM_FORWARDS_PER_MINUTE_MAX + 1) times.shift()
    forwardedAt.set(id, times)
    const first = times[0] as number
    if (times.length > SIM_FORWARDS_PER_MINUTE_MAX && sched.now() - first <= 60_000) {
      loop.halt(
        `${name} forwarded ${id.slice(0, 6)}${id.slice(id.lastIndexOf('-'))} ${times.length} times within a minute at ${Math.round(sched.now() / 1000)} s (a hot loop)`,
      )
    }
  }

  const node: HubNode = {
    name,
    url: `wss://${options.host}/sync`,
    uplink,
    start() {
      if (life?.alive === true) return
      const current = createLife(sched, `${name}#${++stats.incarnations}`)
      life = current
      sched.record(`${name} start #${stats.incarnations}`)
      mkdirSync(options.dir, { recursive: true })
      const timers = current.timers(now)
      const started = createHub({
        dataDir: options.dir,
        upstream: { url: options.upstream, token: async () => options.token() },
        logger,
        WebSocket: wire.socketClass(uplink, current, linkNotes, options.wan),
        timers,
        random: (bytes) => random.fill(bytes),
      })
      hub = started
      const store = started.store
      const tails = createFanoutTails(store, RELAY_LIMITS_DEFAULT.tailEntriesMax)
      const context: SessionContext = {
        store,
        tails,
        verify: simTokenCheck(loop, current, options.secret, now, `${name} token checked`),
        limits: RELAY_LIMITS_DEFAULT,
        metrics: NO_METRICS,
        logger,
        timers,
        gates: createRelayGates(RELAY_LIMITS_DEFAULT),
        commits: createCommitQueue(store, RELAY_LIMITS_DEFAULT),
        hub: started.session,
      }
      stops = [
        // As the relay wires it: another head office log resets the tails (`fanout-tail.ts` 5).
        store.onLogChanged(() => tails.reset()),
        store.onCommit((partitions) => {
          tails.onCommit(partitions)
          for (const session of sessions) session.onCommit(partitions)
        }),
        started.onUpstream((state) => {
          sched.record(`${name} upstream ${state.connected ? 'up' : 'down'}`)
          for (const session of sessions) session.onUpstream(state)
        }),
      ]
      timers.every(() => {
        for (const session of sessions) session.heartbeat()
      }, RELAY_LIMITS_DEFAULT.heartbeatIntervalMs)
      wire.listen(
        (socket) => {
          stats.sessions++
          const session = createSession(socket, context)
          sessions.add(session)
          void session.closed.then(() => sessions.delete(session))
        },
        current,
        options.host,
      )
    },
    crash() {
      if (life === undefined || !life.alive) return
      stats.crashes++
      sched.record(`${name} crash`)
      life.kill()
      wire.serverDied(options.host)
      // The link's socket dies with the process: head office hears of it as the wire says.
      wire.dropLink(uplink)
      sessions.clear()
      for (const stop of stops) stop()
      stops = []
      // Invariant 1: the file closes under the store (its close is synchronous).
      void hub?.store.close()
      hub = undefined
    },
    loseDisk() {
      node.crash()
      stats.disksLost++
      sched.record(`${name} disk lost`)
      if (existsSync(options.dir)) rmSync(options.dir, { recursive: true, force: true })
    },
    get up() {
      return life?.alive === true && hub !== undefined
    },
    openCount: () => (node.up ? (hub as Hub).store.openCount() : 0),
    linked: () => node.up && (hub as Hub).link.state().connected,
    async close() {
      life?.kill()
      await hub?.store.close()
      hub = undefined
    },
    stats,
  }
  return node
}

/** The data directory of hub `name` under the run's directory. */
export function hubDir(runDir: string, name: string): string {
  return join(runDir, name)
}
