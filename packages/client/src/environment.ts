/**
 * The client's environment: everything it takes from the host, each injectable through
 * `ClientOptions` and defaulting to the browser's (or Node's) own. This is the one file of the
 * client that reads host globals (timers, `Date`, `crypto`, `navigator`, `indexedDB`,
 * `WebSocket`, `BroadcastChannel`, `addEventListener`); `environment.test.ts` checks that no
 * other file does, so a simulation that passes its own world runs the real client on it.
 *
 * Terms: the *world* is the set of these injected pieces; *off* (`null`) means the client works
 * without the piece (no tab coordination, no network events, no persistence request).
 *
 * Invariants:
 * 1. Every default is resolved once, when the client is created; `null` is never replaced by
 *    a default.
 * 2. `random()` is built from the injected `random` bytes only, so a seeded source makes every
 *    random choice of the client (client ids, jitter) replay.
 * 3. `realScheduler` keeps the host's semantics: timers never fire early, `defer` is a
 *    microtask.
 */
import type { RandomSource } from '@ledgerline/core'
import type { Scheduler } from './scheduler.ts'
import type { WebSocketConstructor } from './transport.ts'

/** The browser's online and offline events, or a stand-in that plays them. */
export interface ClientNetwork {
  /** Calls `onOnline` / `onOffline` as the network comes and goes; returns the unlisten. */
  listen(onOnline: () => void, onOffline: () => void): () => void
}

/** The part of `navigator.storage` the client uses. */
export interface PersistentStorage {
  persisted?(): Promise<boolean>
  persist(): Promise<boolean>
}

/** The injectable parts of `ClientOptions`; each is documented there. */
export interface ClientEnvironmentOptions {
  /** Clock, ms since the epoch. Default `Date.now`. */
  readonly now?: (() => number) | undefined
  /** Random bytes, like `crypto.getRandomValues`. Default: the host's `crypto`. */
  readonly random?: RandomSource | undefined
  /**
   * Every timer and deferred callback of the client (reconnect backoff, drain and counter
   * delays, pings, waits). Default: the host's `setTimeout`, `setInterval`, `queueMicrotask`.
   */
  readonly scheduler?: Scheduler | undefined
  /** The socket constructor. Default: `globalThis.WebSocket` (Node: pass `ws`'s). */
  readonly WebSocket?: WebSocketConstructor | undefined
  /** IndexedDB. Default: `globalThis.indexedDB` (Node: pass `fake-indexeddb`'s). */
  readonly indexedDB?: IDBFactory | undefined
  /** The key-range class matching `indexedDB`. Default: `globalThis.IDBKeyRange`. */
  readonly IDBKeyRange?: typeof IDBKeyRange | undefined
  /** Web Locks, to elect the tab that runs the socket; `null`: this client leads at once. */
  readonly locks?: LockManager | null | undefined
  /** The channel tabs tell each other changes on; `null`: no other tab hears this one. */
  readonly BroadcastChannel?: typeof BroadcastChannel | null | undefined
  /**
   * Online and offline events; `online` reconnects at once, `offline` drops the socket at
   * once. Default: `globalThis.addEventListener('online' | 'offline')` where it exists; `null`
   * turns them off. (The client reads no `navigator.onLine`: a socket that connects is the only
   * proof of a network it trusts.)
   */
  readonly network?: ClientNetwork | null | undefined
  /** Where `persist` asks for persistent storage. Default: `navigator.storage`; `null`: none. */
  readonly storage?: PersistentStorage | null | undefined
}

/** The world resolved (invariant 1). */
export interface ClientEnvironment {
  readonly now: () => number
  readonly randomBytes: RandomSource
  /** A float in [0, 1) from `randomBytes` (invariant 2). */
  readonly random: () => number
  readonly scheduler: Scheduler
  readonly WebSocket: WebSocketConstructor | undefined
  readonly indexedDB: IDBFactory | undefined
  readonly IDBKeyRange: typeof IDBKeyRange | undefined
  readonly locks: LockManager | null
  readonly BroadcastChannel: typeof BroadcastChannel | null
  readonly network: ClientNetwork | null
  readonly storage: PersistentStorage | null
}

/** The host's timers (invariant 3). */
export const realScheduler: Scheduler = {
  setTimeout: (fn, delayMs) => globalThis.setTimeout(fn, delayMs),
  clearTimeout: (handle) => globalThis.clearTimeout(handle as Parameters<typeof clearTimeout>[0]),
  setInterval: (fn, intervalMs) => globalThis.setInterval(fn, intervalMs),
  clearInterval: (handle) =>
    globalThis.clearInterval(handle as Parameters<typeof clearInterval>[0]),
  defer: (fn) => globalThis.queueMicrotask(fn),
  now: () => globalThis.performance.now(),
}

/**
 * The timers' clock of `scheduler` (`Scheduler.now`, guarantee 4 of `scheduler.ts`); the
 * host's monotonic clock for a scheduler that does not say.
 *
 * @example
 * const elapsed = timersClock(realScheduler) // () => performance.now()
 */
export function timersClock(scheduler: Scheduler): () => number {
  const now = scheduler.now?.bind(scheduler) ?? (() => globalThis.performance.now())
  return now
}

/**
 * Fills in every piece `options` leaves out with the host's own.
 *
 * @example
 * const env = resolveEnvironment({ now: () => simulated.now(), scheduler: simulated })
 */
export function resolveEnvironment(options: ClientEnvironmentOptions): ClientEnvironment {
  const g = globalThis as HostGlobals
  const randomBytes: RandomSource =
    options.random ?? ((b) => crypto.getRandomValues(b as Uint8Array<ArrayBuffer>))
  return {
    now: options.now ?? (() => Date.now()),
    randomBytes,
    random: () => randomFloat(randomBytes),
    scheduler: options.scheduler ?? realScheduler,
    WebSocket: options.WebSocket ?? g.WebSocket,
    indexedDB: options.indexedDB ?? g.indexedDB,
    IDBKeyRange: options.IDBKeyRange ?? g.IDBKeyRange,
    locks: options.locks === undefined ? (g.navigator?.locks ?? null) : options.locks,
    BroadcastChannel:
      options.BroadcastChannel === undefined
        ? typeof g.BroadcastChannel === 'function'
          ? g.BroadcastChannel
          : null
        : options.BroadcastChannel,
    network: options.network === undefined ? hostNetwork() : options.network,
    storage: options.storage === undefined ? hostStorage() : options.storage,
  }
}

/** A float in [0, 1) from four random bytes. */
export function randomFloat(randomBytes: RandomSource): number {
  const b = new Uint8Array(4)
  randomBytes(b)
  return (
    ((b[0] as number) * 2 ** 24 +
      (b[1] as number) * 2 ** 16 +
      (b[2] as number) * 2 ** 8 +
      (b[3] as number)) /
    2 ** 32
  )
}

interface HostGlobals {
  WebSocket?: WebSocketConstructor
  indexedDB?: IDBFactory
  IDBKeyRange?: typeof IDBKeyRange
  BroadcastChannel?: typeof BroadcastChannel
  navigator?: { locks?: LockManager; storage?: Partial<PersistentStorage> }
  addEventListener?: (type: string, listener: () => void) => void
  removeEventListener?: (type: string, listener: () => void) => void
}

/**
 * Browsers tell when the network comes and goes
 * (https://developer.mozilla.org/docs/Web/API/Window/online_event). Looked up when the client
 * listens and unlistens, as a page (or a test) may install them late.
 */
function hostNetwork(): ClientNetwork {
  return {
    listen(onOnline, onOffline) {
      const g = globalThis as HostGlobals
      if (typeof g.addEventListener !== 'function') return () => {}
      g.addEventListener('online', onOnline)
      g.addEventListener('offline', onOffline)
      return () => {
        const h = globalThis as HostGlobals
        if (typeof h.removeEventListener !== 'function') return
        h.removeEventListener('online', onOnline)
        h.removeEventListener('offline', onOffline)
      }
    },
  }
}

function hostStorage(): PersistentStorage | null {
  const storage = (globalThis as HostGlobals).navigator?.storage
  if (storage === undefined || typeof storage.persist !== 'function') return null
  return storage as PersistentStorage
}
