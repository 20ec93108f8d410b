/**
 * The clock and timers of the relay's sessions (auth timeout, token expiry, close handshake,
 * heartbeat), injected so a deterministic simulation can drive them; `NODE_TIMERS` are the real
 * ones and the default.
 *
 * Invariants:
 * 1. A timer asked for with `unref` never keeps the process alive by itself.
 * 2. `clear` of a handle that already fired, or of `undefined`, does nothing.
 */

/** Whatever `set` returns; only `clear` looks at it. */
export type TimerHandle = { readonly __timer: true } | object

export interface RelayTimers {
  now(): number
  set(fn: () => void, ms: number, options?: { readonly unref?: boolean }): TimerHandle
  clear(handle: TimerHandle | undefined): void
  /** Calls `fn` every `ms` until cleared; never keeps the process alive (invariant 1). */
  every(fn: () => void, ms: number): TimerHandle
}

/**
 * The group commit's wait in Node: setImmediate runs after the I/O callbacks of this loop turn,
 * so the frames read from many sockets in one turn land in one transaction.
 */
export function nodeDefer(fn: () => void): void {
  setImmediate(fn)
}

/** Node's clock and timers. */
export const NODE_TIMERS: RelayTimers = {
  now: () => Date.now(),
  set(fn, ms, options) {
    const timer = setTimeout(fn, ms)
    if (options?.unref === true) timer.unref()
    return timer
  },
  clear(handle) {
    // clearTimeout and clearInterval clear either kind of Node timer.
    if (handle !== undefined) clearTimeout(handle as NodeJS.Timeout)
  },
  every(fn, ms) {
    const timer = setInterval(fn, ms)
    timer.unref()
    return timer
  },
}
