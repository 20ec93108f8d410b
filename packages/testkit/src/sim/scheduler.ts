/**
 * The simulated clock and timer queue: a single-threaded event loop over simulated time.
 *
 * Terms: an *event* is a callback due at a simulated time; the *trace* is the sequence of events
 * run and facts recorded, folded into the *trace hash* that proves a replay is exact.
 *
 *   at(t, label, fn) ──► heap ordered by (time, sequence) ──► step(): pop, set now = t, run fn
 *
 * Invariants:
 * 1. Time never goes backwards: `now()` is the due time of the event being run.
 * 2. Events due at the same time run in the order they were scheduled (the sequence number
 *    breaks ties), so a run depends only on the seed, never on the host.
 * 3. Every event run and every `record()` feeds the trace hash, so two runs with equal hashes
 *    took the same path. A `note()` never does: detail kept for reading a trace (when
 *    `keepTrace` is set) does not change the hash of a run.
 * 4. The queue is bounded by `SIM_EVENTS_QUEUED_MAX`: a runaway feedback loop fails loudly.
 */
import { SIM_EVENTS_QUEUED_MAX } from './limits.ts'

export interface SimScheduler {
  /** Simulated ms since the start of the run. */
  now(): number
  /** Runs `fn` at simulated time `time` (not before now). Returns an id for `cancel`. */
  at(time: number, label: string, fn: () => void): number
  /** Runs `fn` `delayMs` from now. */
  after(delayMs: number, label: string, fn: () => void): number
  cancel(id: number): void
  /** Due time of the earliest event queued (cancelled ones included); undefined when none. */
  nextTime(): number | undefined
  /** Runs the earliest event; false when none is queued. */
  step(): boolean
  /** Runs events until `done()` holds or simulated time passes `timeMax`; returns `done()`. */
  runUntil(done: () => boolean, timeMax: number): boolean
  /** Folds a fact into the trace hash (and, when tracing is on, into the kept trace). */
  record(fact: string): void
  /**
   * Keeps a detail in the trace when tracing is on, without folding it into the hash
   * (invariant 3); `fact` is called only then, and undefined keeps nothing.
   */
  note(fact: () => string | undefined): void
  /** The trace hash so far, 16 hex digits. */
  traceHash(): string
  /** The last facts recorded, when `keepTrace` was set (for replay diffs). */
  trace(): readonly string[]
  readonly eventsRun: number
  /** Label of the event run last (to say what a runaway loop runs). */
  readonly lastLabel: string
}

/**
 * @example
 * const sched = createSimScheduler()
 * sched.after(10, 'tick', () => sched.record('ticked'))
 * sched.runUntil(() => false, 100)
 */
export function createSimScheduler(options: { keepTrace?: number | undefined } = {}): SimScheduler {
  const heap: Timer[] = []
  const cancelled = new Set<number>()
  const kept: string[] = []
  const keep = options.keepTrace ?? 0
  let now = 0
  let seq = 0
  let eventsRun = 0
  let lastLabel = ''
  // Two FNV-1a lanes with different bases give a 64-bit hash: collisions between runs of
  // different seeds would otherwise be plausible over thousands of seeds.
  let h1 = 0x811c9dc5
  let h2 = 0x01000193
  const mix = (text: string) => {
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i)
      h1 = Math.imul(h1 ^ c, 0x01000193) >>> 0
      h2 = Math.imul(h2 ^ c, 0x5bd1e995) >>> 0
    }
    h1 = Math.imul(h1 ^ 0x0a, 0x01000193) >>> 0
    h2 = Math.imul(h2 ^ 0x0a, 0x5bd1e995) >>> 0
    keepFact(text)
  }
  const keepFact = (text: string) => {
    if (keep === 0) return
    kept.push(text)
    if (kept.length > keep) kept.shift()
  }
  const sched: SimScheduler = {
    now: () => now,
    at(time, label, fn) {
      if (heap.length >= SIM_EVENTS_QUEUED_MAX) {
        throw new Error(`simulation: over ${SIM_EVENTS_QUEUED_MAX} events queued (runaway loop?)`)
      }
      const id = ++seq
      push(heap, { time: Math.max(time, now), seq: id, label, fn })
      return id
    },
    after(delayMs, label, fn) {
      return sched.at(now + Math.max(0, delayMs), label, fn)
    },
    cancel(id) {
      cancelled.add(id)
    },
    nextTime() {
      // Cancelled events at the top are dropped here, so a caller that waits for the next due
      // time is not misled by them.
      for (;;) {
        const top = heap[0]
        if (top === undefined) return undefined
        if (!cancelled.has(top.seq)) return top.time
        cancelled.delete(top.seq)
        pop(heap)
      }
    },
    step() {
      for (;;) {
        const timer = pop(heap)
        if (timer === undefined) return false
        if (cancelled.delete(timer.seq)) continue
        now = timer.time
        eventsRun++
        lastLabel = timer.label
        mix(`${now} ${timer.label}`)
        timer.fn()
        return true
      }
    },
    runUntil(done, timeMax) {
      while (!done()) {
        const next = heap[0]
        if (next === undefined || next.time > timeMax) return done()
        sched.step()
      }
      return true
    },
    record: mix,
    note(fact) {
      if (keep === 0) return
      const text = fact()
      if (text !== undefined) keepFact(`  ${now} ${text}`)
    },
    traceHash: () => h1.toString(16).padStart(8, '0') + h2.toString(16).padStart(8, '0'),
    trace: () => kept,
    get eventsRun() {
      return eventsRun
    },
    get lastLabel() {
      return lastLabel
    },
  }
  return sched
}

interface Timer {
  readonly time: number
  readonly seq: number
  readonly label: string
  readonly fn: () => void
}

function less(a: Timer, b: Timer): boolean {
  return a.time < b.time || (a.time === b.time && a.seq < b.seq)
}

function push(heap: Timer[], timer: Timer): void {
  heap.push(timer)
  let i = heap.length - 1
  while (i > 0) {
    const parent = (i - 1) >> 1
    if (!less(heap[i] as Timer, heap[parent] as Timer)) break
    ;[heap[i], heap[parent]] = [heap[parent] as Timer, heap[i] as Timer]
    i = parent
  }
}

function pop(heap: Timer[]): Timer | undefined {
  const top = heap[0]
  const last = heap.pop()
  if (top === undefined || last === undefined || heap.length === 0) return top
  heap[0] = last
  let i = 0
  for (;;) {
    const l = 2 * i + 1
    const r = l + 1
    let m = i
    if (l < heap.length && less(heap[l] as Timer, heap[m] as Timer)) m = l
    if (r < heap.length && less(heap[r] as Timer, heap[m] as Timer)) m = r
    if (m === i) break
    ;[heap[i], heap[m]] = [heap[m] as Timer, heap[i] as Timer]
    i = m
  }
  return top
}
