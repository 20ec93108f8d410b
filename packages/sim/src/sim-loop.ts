/**
 * The simulation's event loop: the real client and relay run on it, with every timer, every
 * IndexedDB task and every network delivery taken from one seeded scheduler.
 *
 * Terms: an *event* is one callback of the scheduler (a timer, a frame arriving, a task of
 * fake-indexeddb); a *drain* runs every microtask the event queued, and the microtasks those
 * queue, before the next event; a *barrier* is real work off the loop (WebCrypto in the token
 * check) the loop waits for before it goes on; a *life* is one incarnation of a node (a till's
 * browser, a relay process): its timers die with it.
 *
 *   next event (time, seq) ─► run it ─► await barriers ─► drain microtasks ─► next event
 *
 * Invariants:
 * 1. A run depends only on its seed: events run in (time, sequence) order, each followed by a
 *    full drain, and real work only ever reaches the loop through a barrier, at the event that
 *    asked for it. The same seed therefore gives the same trace hash (a test proves it).
 * 2. From the loop's creation until `close`, `globalThis.setImmediate` queues an event at the
 *    current time: fake-indexeddb schedules its tasks through it when it is called, so
 *    IndexedDB runs on the scheduler (also what the caller starts between two runs) and
 *    transactions go inactive between events, as in a browser. One loop owns a thread at a time.
 * 3. A killed life runs nothing more: its timers are cancelled, and callbacks it set that fire
 *    anyway (a cancelled id racing the heap) check it first.
 * 4. An exception thrown by an event, and a promise rejection nobody handles, are recorded as
 *    faults of the run (the product crashed), never lost.
 * 5. A hot loop ends the run: more than `SIM_EVENTS_PER_SECOND_MAX` events within one simulated
 *    second, more than `SIM_EVENTS_PER_MINUTE_MAX` in each of `SIM_HOT_MINUTES_MAX` simulated
 *    minutes in a row (a product retrying without a backoff), or `SIM_EVENTS_MAX` in all,
 *    stops it with the labels that ran most, as a liveness failure of the run.
 */
import type { Scheduler, TimerHandle } from '@ledgerline/client'
import type { RelayTimers } from '@ledgerline/relay'
import type { SimScheduler } from '@ledgerline/testkit'
import {
  SIM_EVENTS_MAX,
  SIM_EVENTS_PER_MINUTE_MAX,
  SIM_EVENTS_PER_SECOND_MAX,
  SIM_HOT_MINUTES_MAX,
} from './limits.ts'

export interface SimLoop {
  readonly sched: SimScheduler
  /** Set when a hot loop stopped the run (invariant 5); every later `run` returns at once. */
  readonly runaway: string | undefined
  /** Most events run within one simulated minute so far (to size the hot-loop bound). */
  readonly busiestMinute: number
  /** Stops the run: the world saw a hot loop the event counts do not (invariant 5). */
  halt(reason: string): void
  /** Gives setImmediate back to the host; the loop runs nothing more. */
  close(): void
  /** The loop waits for `promise` after the current event, before the next one (invariant 1). */
  barrier(promise: Promise<unknown>): void
  /** Runs events until `done()` holds or the next event is past `timeMax`; resolves `done()`. */
  run(done: () => boolean, timeMax: number): Promise<boolean>
  /** Exceptions and unhandled rejections seen so far (invariant 4). */
  readonly faults: readonly string[]
}

/** The loop that owns this thread's setImmediate (invariant 2), and the host's own. */
let owner: SimLoop | undefined
let realSetImmediate: typeof setImmediate | undefined

/**
 * @example
 * const loop = createSimLoop(createSimScheduler())
 * await loop.run(() => allDrained(), 60_000)
 */
export function createSimLoop(sched: SimScheduler): SimLoop {
  const barriers: Promise<unknown>[] = []
  const faults: string[] = []
  let events = 0
  let runaway: string | undefined
  let secondStart = 0
  let secondEvents = 0
  let labels = new Map<string, number>()
  let minuteStart = 0
  let minuteEvents = 0
  let hotMinutes = 0
  let busiestMinute = 0
  /** Invariant 5: true when the run must stop. */
  const hot = (): boolean => {
    const now = sched.now()
    if (now - minuteStart >= 60_000) {
      busiestMinute = Math.max(busiestMinute, minuteEvents)
      hotMinutes = minuteEvents > SIM_EVENTS_PER_MINUTE_MAX ? hotMinutes + 1 : 0
      minuteStart = now
      minuteEvents = 0
    }
    minuteEvents++
    if (now - secondStart >= 1_000) {
      secondStart = now
      secondEvents = 0
      labels = new Map()
    }
    secondEvents++
    const label = sched.lastLabel
    labels.set(label, (labels.get(label) ?? 0) + 1)
    if (
      secondEvents <= SIM_EVENTS_PER_SECOND_MAX &&
      hotMinutes < SIM_HOT_MINUTES_MAX &&
      events <= SIM_EVENTS_MAX
    ) {
      return false
    }
    const top = [...labels]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 3)
      .map(([l, n]) => `${l} ×${n}`)
      .join(', ')
    runaway = `hot loop at ${Math.round(now / 1000)} s: ${secondEvents} events in the last simulated second, ${hotMinutes} minutes over ${SIM_EVENTS_PER_MINUTE_MAX} events, ${events} in all${top === '' ? '' : ` (${top})`}`
    sched.record('runaway')
    return true
  }
  const fault = (what: string, error: unknown) => {
    const text = `${what}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`
    faults.push(text)
    sched.record(`fault ${what}`)
  }
  const onRejection = (reason: unknown) => fault('unhandled rejection', reason)
  /** Invariant 2, from the loop's creation until `close`: also between runs. */
  const install = () => {
    if (owner !== undefined) throw new Error('sim: one simulation loop runs at a time in a thread')
    owner = loop
    realSetImmediate = globalThis.setImmediate
    const simSetImmediate = (fn: (...args: unknown[]) => void, ...args: unknown[]) => {
      sched.at(sched.now(), 'task', () => fn(...args))
      return undefined as unknown as NodeJS.Immediate
    }
    globalThis.setImmediate = simSetImmediate as unknown as typeof setImmediate
  }
  const loop: SimLoop = {
    sched,
    barrier(promise) {
      barriers.push(promise)
    },
    faults,
    get runaway() {
      return runaway
    },
    get busiestMinute() {
      return Math.max(busiestMinute, minuteEvents)
    },
    halt(reason) {
      if (runaway !== undefined) return
      runaway = reason
      sched.record('halted')
    },
    async run(done, timeMax) {
      if (runaway !== undefined) return done()
      if (owner !== loop) throw new Error('sim: this loop was closed')
      process.on('unhandledRejection', onRejection)
      try {
        for (;;) {
          if (done()) return true
          const next = sched.nextTime()
          if (next === undefined || next > timeMax) return done()
          events++
          try {
            sched.step()
          } catch (error) {
            fault('event threw', error)
          }
          if (hot() || runaway !== undefined) return done()
          while (barriers.length > 0) {
            const waiting = barriers.splice(0)
            await Promise.allSettled(waiting)
          }
          await drain()
        }
      } finally {
        process.off('unhandledRejection', onRejection)
      }
    },
    close() {
      if (owner !== loop) return
      globalThis.setImmediate = realSetImmediate as typeof setImmediate
      owner = undefined
    },
  }
  install()
  return loop
}

/**
 * Every microtask queued so far, and those they queue, run before this resolves: from inside a
 * microtask, a `process.nextTick` callback runs only once V8's microtask queue is empty.
 */
export async function drain(): Promise<void> {
  await Promise.resolve()
  await new Promise<void>((resolve) => process.nextTick(resolve))
}

/** One incarnation of a node: its timers, and whether it still runs (invariant 3). */
export interface Life {
  readonly name: string
  readonly alive: boolean
  /** Runs `fn` after `delayMs` if this life still runs then. Returns an id for `cancel`. */
  after(delayMs: number, label: string, fn: () => void): number
  cancel(id: number): void
  /** Kills the life: every timer it set is cancelled. */
  kill(): void
  /** The client's `Scheduler` over this life (`defer` is a microtask, as in a browser). */
  readonly scheduler: Scheduler
  /** The relay's timers over this life, on `now`. */
  timers(now: () => number): RelayTimers
}

/**
 * @example
 * const life = createLife(sched, 'till-1#2')
 * createClient({ …, scheduler: life.scheduler })
 * life.kill() // the browser crashed
 */
export function createLife(sched: SimScheduler, name: string): Life {
  let alive = true
  const timers = new Set<number>()
  const after = (delayMs: number, label: string, fn: () => void): number => {
    if (!alive) return -1
    // Whole milliseconds, never early: the client's jittered delays are fractional.
    const id = sched.after(Math.max(0, Math.ceil(delayMs)), label, () => {
      timers.delete(id)
      if (alive) fn()
    })
    timers.add(id)
    return id
  }
  const cancel = (id: number) => {
    if (!timers.delete(id)) return
    sched.cancel(id)
  }
  /** An interval: the handle keeps the id of its next run. */
  const every = (ms: number, label: string, fn: () => void): IntervalHandle => {
    const handle: IntervalHandle = { id: -1, stopped: false }
    const arm = () => {
      handle.id = after(ms, label, () => {
        if (handle.stopped) return
        arm()
        fn()
      })
    }
    arm()
    return handle
  }
  const clear = (handle: TimerHandle | undefined) => {
    if (handle === undefined || handle === null || typeof handle !== 'object') return
    const h = handle as Partial<IntervalHandle>
    if (typeof h.id !== 'number') return
    if ('stopped' in h) h.stopped = true
    cancel(h.id)
  }
  const timerLabel = `${name} timer`
  const scheduler: Scheduler = {
    setTimeout: (fn, delayMs) => ({ id: after(delayMs, timerLabel, fn) }),
    clearTimeout: clear,
    setInterval: (fn, intervalMs) => every(Math.max(1, intervalMs), timerLabel, fn),
    clearInterval: clear,
    defer: (fn) => queueMicrotask(fn),
    // The timers' clock is simulated time: a till's clock jumps, its timers do not.
    now: () => sched.now(),
  }
  return {
    name,
    get alive() {
      return alive
    },
    after,
    cancel,
    kill() {
      alive = false
      for (const id of timers) sched.cancel(id)
      timers.clear()
    },
    scheduler,
    timers(now) {
      const label = `${name} relay timer`
      return {
        now,
        set: (fn, ms) => ({ id: after(ms, label, fn) }),
        clear,
        every: (fn, ms) => every(Math.max(1, ms), label, fn),
      }
    },
  }
}

interface IntervalHandle {
  id: number
  stopped: boolean
}
