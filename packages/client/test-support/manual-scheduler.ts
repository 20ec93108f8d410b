// A scheduler on a clock the test moves: timers run only inside `advance`, in due order (ties
// in the order they were set), with the microtasks and immediates they cause settled after
// each one. Deferred callbacks are real microtasks.
import type { Scheduler } from '../src/scheduler.ts'

export interface ManualScheduler extends Scheduler {
  now(): number
  /** Moves the clock `ms` forward, running every timer that falls due on the way. */
  advance(ms: number): Promise<void>
  /** Timers set and not yet run or cleared. */
  pending(): number
}

interface Timer {
  readonly id: number
  due: number
  readonly fn: () => void
  readonly every: number | undefined
}

export function createManualScheduler(start = 0): ManualScheduler {
  let now = start
  let nextId = 1
  const timers = new Map<number, Timer>()
  const add = (fn: () => void, ms: number, every: number | undefined) => {
    const id = nextId++
    timers.set(id, { id, due: now + Math.max(0, ms), fn, every })
    return id
  }
  const clear = (handle: unknown) => {
    if (typeof handle === 'number') timers.delete(handle)
  }
  return {
    now: () => now,
    setTimeout: (fn, ms) => add(fn, ms, undefined),
    setInterval: (fn, ms) => add(fn, ms, Math.max(1, ms)),
    clearTimeout: clear,
    clearInterval: clear,
    defer: (fn) => queueMicrotask(fn),
    pending: () => timers.size,
    async advance(ms) {
      const target = now + ms
      await settle()
      for (;;) {
        let first: Timer | undefined
        for (const t of timers.values()) {
          if (t.due <= target && (first === undefined || t.due < first.due)) first = t
        }
        if (first === undefined) break
        now = first.due
        if (first.every === undefined) timers.delete(first.id)
        else first.due += first.every
        first.fn()
        await settle()
      }
      now = target
    },
  }
}

/** Lets promise chains (and immediates) that are ready run to their end. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await new Promise<void>((resolve) => setImmediate(resolve))
}
