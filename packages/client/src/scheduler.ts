/**
 * The scheduler: every timer the client sets goes through one of these, so a simulation can
 * run the real client on simulated time (`ClientOptions.scheduler`). The default,
 * `realScheduler` in `environment.ts`, is the host's timers.
 *
 * Terms: a *timer handle* is whatever `setTimeout`/`setInterval` returned; the client only
 * hands it back to `clearTimeout`/`clearInterval`. *Deferred* work runs after the current task
 * and before any timer (the host's `queueMicrotask`).
 *
 * What an implementation must guarantee:
 * 1. A callback never runs before its delay has passed on the scheduler's clock, and never
 *    runs after it was cleared.
 * 2. Callbacks due at the same time run in the order they were set; `defer` runs callbacks in
 *    the order they were deferred, each after the code that deferred it has returned.
 * 3. Clearing an unknown, finished or `undefined` handle does nothing.
 * 4. `now()`, when given, is the clock the timers run on: monotonic, whatever the wall clock
 *    does (a device's clock set back or forward moves neither the timers nor `now()`).
 */

/** Opaque: only ever handed back to the scheduler that made it. */
export type TimerHandle = unknown

export interface Scheduler {
  setTimeout(fn: () => void, delayMs: number): TimerHandle
  clearTimeout(handle: TimerHandle | undefined): void
  setInterval(fn: () => void, intervalMs: number): TimerHandle
  clearInterval(handle: TimerHandle | undefined): void
  /** Runs `fn` after the current task, before timers (the host's `queueMicrotask`). */
  defer(fn: () => void): void
  /**
   * Ms on the timers' clock (guarantee 4), for measuring how long something took; the wall
   * clock (`ClientOptions.now`) can jump. Without it: `performance.now()` (`timersClock`).
   */
  now?(): number
}

/**
 * A promise that resolves after `delayMs` on `scheduler`'s clock.
 *
 * @example
 * await sleep(realScheduler, 10)
 */
export function sleep(scheduler: Scheduler, delayMs: number): Promise<void> {
  return new Promise((resolve) => {
    scheduler.setTimeout(resolve, delayMs)
  })
}
