/**
 * A till: one device running the real client, `createClient` from `@ledgerline/client`, in one
 * to `SIM_TABS_MAX` tabs on one database, with its world injected: the wire's sockets, the
 * till's clock, its timers and randomness, its disk (fake-indexeddb with a crash model), Web
 * Locks and a BroadcastChannel between its tabs, online/offline events, storage.
 *
 * Terms: a *boot* is one run of the till's browser (a `Life`); a *power cut* ends it (every tab
 * dies, the disk keeps its durable image); a *restore* puts an older copy of the disk back
 * before the next boot; the *app* is what the cashier does: `append`s through a random tab.
 *
 * Invariants:
 * 1. Everything a till does is derived from the run's seed: its clock is the simulated time
 *    plus its skew and jumps, its randomness is its own stream.
 * 2. The history hears only from a live boot: an `append` that resolves after a power cut was
 *    never seen by the cashier.
 * 3. A power cut breaks the till's connections: the relay learns it late (half-open) or by its
 *    heartbeat, as from a device that lost power.
 */
import type { Data, Schema } from '@ledgerline/core'
import type { AppendOptions, Client, ClientBugs, ClientNetwork } from '@ledgerline/client'
import { createClient } from '@ledgerline/client'
import { decodeMessage } from '@ledgerline/protocol'
import type { Prng, SimScheduler } from '@ledgerline/testkit'
import { IDBKeyRange } from 'fake-indexeddb'
import { createSimBrowser } from './browser.ts'
import { businessKey, opOf } from './content.ts'
import type { ProductCrashPoint, ProductCrashPoints } from './crash-points.ts'
import type { DeviceDisk, DiskImage } from './device-disk.ts'
import { createDeviceDisk } from './device-disk.ts'
import type { SimHistory } from './history.ts'
import {
  SIM_DIALS_PER_MINUTE_MAX,
  SIM_EPOCH_MS,
  SIM_SAME_FAILURE_MAX,
  SIM_SAME_FAILURE_WINDOW_MS,
} from './limits.ts'
import type { Life, SimLoop } from './sim-loop.ts'
import { createLife } from './sim-loop.ts'
import { frameNote } from './trace-notes.ts'
import type { Wire } from './wire.ts'

export interface TillOptions {
  readonly name: string
  readonly loop: SimLoop
  readonly wire: Wire
  readonly rng: Prng
  readonly schema: Schema
  readonly tabs: number
  readonly history: SimHistory
  /** The app's token function, asked with the till's name and the token server's clock. */
  readonly token: () => string
  readonly skewMs: number
  readonly bugs?: ClientBugs | undefined
  /** Where the world may cut the till's power (`crash-points.ts`). */
  readonly points: ProductCrashPoints
  /** The relays the client is given, in order (a register in a store: its hub first). */
  readonly urls?: readonly string[] | undefined
  /** The store's internet line its connections to head office run over (`wire.ts` inv. 3). */
  readonly wan?: string | undefined
}

export interface AppendRequest {
  readonly entity: string
  readonly kind: string
  readonly data: Data
  readonly options?: AppendOptions | undefined
}

export interface Till {
  readonly name: string
  readonly alive: boolean
  /** Starts the browser (after a power cut: on what the disk kept). */
  boot(): Promise<void>
  /** Power cut (invariant 3). */
  crash(): void
  /** A copy of the disk's durable image, as a backup would take it. */
  copyDisk(): DiskImage
  /** With the till off: the disk holds `image` again. */
  restoreDisk(image: DiskImage): void
  /** The network comes and goes (a partition of the till's link, and the browser's events). */
  setOnline(online: boolean, tellBrowser: boolean): void
  /** The till's clock jumps by `ms` (negative: backwards). */
  jumpClock(ms: number): void
  /** The cashier does something: `append` through one of the open tabs. */
  append(op: string, request: AppendRequest, then?: (entryId: string) => void): void
  /** Closes one tab and opens another on the same database (the leader may change). */
  reloadTab(): Promise<void>
  /** The open tabs' clients (the first one is the oldest). */
  clients(): readonly Client[]
  /** The till's clock, ms since the epoch. */
  now(): number
  readonly stats: { boots: number; crashes: number; tabReloads: number }
  readonly disk: DeviceDisk
}

/**
 * @example
 * const till = createTill({ name: 'till-1', loop, wire, rng, schema, tabs: 2, history, token,
 *   skewMs: 0 })
 * await till.boot()
 * till.append('till-1:1', { entity: 'stock/s7:milk-1l', kind: 'stock.moved', data: { qty: -1 } })
 */
export function createTill(options: TillOptions): Till {
  const { name, loop, wire, history } = options
  const sched: SimScheduler = loop.sched
  const random = options.rng.fork('random')
  const pick = options.rng.fork('pick')
  const downtime = options.rng.fork('downtime')
  /** A crash point fired: the power goes now, and comes back a while later. */
  const cutAt = (point: ProductCrashPoint) => {
    if (life?.alive !== true || !options.points.hit(point)) return
    till.crash()
    sched.after(downtime.int(1_000, 5 * 60_000), `${name} power back`, () => void till.boot())
  }
  const disk = createDeviceDisk(name, options.rng.fork('disk'), () => cutAt('till.commit.after'))
  let jumpedMs = 0
  let life: Life | undefined
  let open: Client[] = []
  let networkListeners: { online: () => void; offline: () => void }[] = []
  let boots = 0
  const stats = { boots: 0, crashes: 0, tabReloads: 0 }
  const now = () => SIM_EPOCH_MS + Math.floor(sched.now()) + options.skewMs + jumpedMs

  const tap = {
    dialed: () => {
      const list = history.dials.get(name) ?? []
      list.push(sched.now())
      history.dials.set(name, list)
      // A till that dials in a hot loop would spin until the drain time runs out: stop here.
      const minuteAgo = list[list.length - 1 - SIM_DIALS_PER_MINUTE_MAX]
      if (minuteAgo !== undefined && sched.now() - minuteAgo <= 60_000) {
        loop.halt(
          `${name} dialed ${SIM_DIALS_PER_MINUTE_MAX + 1} times within a minute at ${Math.round(sched.now() / 1000)} s (a hot loop)`,
        )
      }
    },
    sent: (_link: string, bytes: Uint8Array) => {
      const message = decodeMessage(bytes)
      sched.note(() => frameNote(name, 'sent', message))
      if (message.type !== 'push') return
      for (const e of message.entries) {
        const op = opOf(e)
        if (op === undefined) continue
        history.pushedAs.set(op, e.id)
        history.pushedAt.set(op, sched.now())
      }
      sched.after(0, `${name} pushed`, () => cutAt('till.push.after'))
    },
    toClient: (_link: string, bytes: Uint8Array) => {
      const message = decodeMessage(bytes)
      sched.note(() => frameNote(name, 'got', message))
      if (message.type === 'error') {
        failedAgain(`error ${message.kind}: ${message.message.slice(0, 80)}`)
        return
      }
      if (message.type !== 'ack') return
      for (const result of message.results) {
        history.acks.push({ till: name, result, at: sched.now() })
      }
      const first = message.results[0]
      if (first?.status === 'refused' && first.code === 'seq_gap') {
        failedAgain(`seq_gap on ${first.id}`)
      } else {
        sameFailure = { key: '', times: [] }
      }
    },
  }

  /**
   * A till told the same failure `SIM_SAME_FAILURE_MAX` times in a row (per relay in its list: a
   * round through the list goes at one attempt's pace, `connection.ts` invariant 7, so every
   * relay refuses once per backoff step), with no ack of progress
   * between, within `SIM_SAME_FAILURE_WINDOW_MS`, is in a livelock (it retries without backing
   * off, and will not drain however long it runs): stop here.
   */
  let sameFailure: { key: string; times: number[] } = { key: '', times: [] }
  const sameFailureMax = SIM_SAME_FAILURE_MAX * (options.urls?.length ?? 1)
  const failedAgain = (key: string) => {
    if (sameFailure.key !== key) sameFailure = { key, times: [] }
    const times = sameFailure.times
    times.push(sched.now())
    if (times.length > sameFailureMax) times.shift()
    if (times.length < sameFailureMax) return
    if ((times.at(-1) as number) - (times[0] as number) > SIM_SAME_FAILURE_WINDOW_MS) return
    loop.halt(
      `${name} was told '${key}' ${sameFailureMax} times in a row within ${Math.round(((times.at(-1) as number) - (times[0] as number)) / 1000)} s by ${Math.round(sched.now() / 1000)} s (a livelock)`,
    )
  }

  const openTab = (
    current: Life,
    indexedDB: IDBFactory,
    browser: ReturnType<typeof createSimBrowser>,
  ) => {
    const network: ClientNetwork = {
      listen(onOnline, onOffline) {
        const entry = { online: onOnline, offline: onOffline }
        networkListeners.push(entry)
        return () => {
          networkListeners = networkListeners.filter((l) => l !== entry)
        }
      },
    }
    const client = createClient({
      url: options.urls ?? 'wss://relay.sim/sync',
      token: options.token,
      schema: options.schema,
      dbName: `ledgerline:sim:${name}`,
      now,
      random: (bytes) => random.fill(bytes),
      scheduler: current.scheduler,
      WebSocket: wire.socketClass(name, current, tap, options.wan),
      indexedDB,
      IDBKeyRange,
      locks: browser.locks,
      BroadcastChannel: browser.BroadcastChannel,
      network,
      storage: { persisted: async () => true, persist: async () => true },
      bugs: options.bugs,
    })
    open.push(client)
  }

  const till: Till = {
    name,
    get alive() {
      return life?.alive === true
    },
    async boot() {
      if (life?.alive === true) return
      const current = createLife(sched, `${name}#${++boots}`)
      life = current
      stats.boots++
      sched.record(`${name} boot`)
      const indexedDB = await disk.boot(current)
      if (!current.alive) return
      const browser = createSimBrowser(current)
      open = []
      networkListeners = []
      for (let i = 0; i < options.tabs; i++) openTab(current, indexedDB, browser)
      bootWorld.set(current, { indexedDB, browser })
    },
    crash() {
      if (life === undefined || !life.alive) return
      stats.crashes++
      sched.record(`${name} power cut`)
      life.kill()
      disk.crash()
      history.cut(name)
      wire.dropLink(name)
      open = []
      networkListeners = []
    },
    copyDisk: () => disk.copy(),
    restoreDisk(image) {
      disk.restore(image)
      sched.record(`${name} disk restored`)
    },
    setOnline(online, tellBrowser) {
      wire.setPartitioned(name, !online)
      if (!tellBrowser || life?.alive !== true) return
      for (const l of networkListeners) (online ? l.online : l.offline)()
    },
    jumpClock(ms) {
      jumpedMs += ms
      sched.record(`${name} clock ${ms}`)
    },
    append(op, request, then) {
      const current = life
      if (current === undefined || !current.alive || open.length === 0) return
      const client = open[pick.int(0, open.length - 1)] as Client
      history.started({
        op,
        at: sched.now(),
        till: name,
        entity: request.entity,
        kind: request.kind,
        intent: request.options?.intent ?? 'fact',
        business: businessKey({
          entity: request.entity,
          kind: request.kind,
          data: request.data,
          intent: request.options?.intent ?? 'fact',
        }),
      })
      client.append(request.entity, request.kind, request.data, request.options).then(
        (entry) => {
          if (!current.alive) return
          history.resolved(op, entry)
          then?.(entry.id)
        },
        (error: unknown) => {
          if (!current.alive) return
          const kind = (error as { kind?: unknown }).kind
          history.failed(op, typeof kind === 'string' ? kind : String(error))
        },
      )
    },
    async reloadTab() {
      const current = life
      if (current === undefined || !current.alive || open.length === 0) return
      const world = bootWorld.get(current)
      if (world === undefined) return
      stats.tabReloads++
      sched.record(`${name} tab reload`)
      const client = open[pick.int(0, open.length - 1)] as Client
      open = open.filter((c) => c !== client)
      await client.close()
      if (current.alive) openTab(current, world.indexedDB, world.browser)
    },
    clients: () => open,
    now,
    stats,
    disk,
  }
  const bootWorld = new WeakMap<
    Life,
    { indexedDB: IDBFactory; browser: ReturnType<typeof createSimBrowser> }
  >()
  return till
}
