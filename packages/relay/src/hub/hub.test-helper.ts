// Helpers of the store hub tests: a relay on a fresh data directory (head office, or a hub with
// `upstream`), and a TCP proxy between a hub and head office whose connections can be cut (and
// new ones refused) and let through again, to cut a hub's upstream link; and timers on a clock the
// test moves.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Schema } from '@ledgerline/core'
import { startCutProxy } from '@ledgerline/testkit'
import type { CutProxy } from '@ledgerline/testkit'
import { SECRET } from '../edges.test-helper.ts'
import { createRelay } from '../index.ts'
import type { RelayTimers, TimerHandle } from '../timers.ts'
import type { Relay, UpstreamOptions } from '../index.ts'

/** A relay on a new data directory, closed and removed by `undo`. */
export async function startTestRelay(
  undo: (() => Promise<void> | void)[],
  options: { upstream?: UpstreamOptions | undefined; schema?: Schema | undefined } = {},
): Promise<Relay> {
  const dataDir = mkdtempSync(join(tmpdir(), 'll-hub-'))
  const relay = await createRelay({
    port: 0,
    dataDir,
    schema: options.schema,
    auth: { secret: SECRET },
    logLevel: 'silent',
    upstream: options.upstream,
  })
  undo.push(async () => {
    await relay.close()
    rmSync(dataDir, { recursive: true, force: true })
  })
  return relay
}

export type Proxy = Omit<CutProxy, 'close'>

/** A TCP proxy to `port` whose connections can be cut and refused; closed by `undo`. */
export async function startProxy(
  port: number,
  undo: (() => Promise<void> | void)[],
): Promise<Proxy> {
  const proxy = await startCutProxy(port)
  undo.push(() => proxy.close())
  return proxy
}

/** Timers on a clock that moves only when the test says. */
export function manualTimers(): RelayTimers & {
  advance(ms: number): Promise<void>
  pending(): number
} {
  let now = 1_000_000
  let next = 0
  const due = new Map<number, { at: number; fn: () => void; every?: number }>()
  return {
    now: () => now,
    set(fn, ms) {
      const id = ++next
      due.set(id, { at: now + ms, fn })
      return { id }
    },
    clear(handle: TimerHandle | undefined) {
      if (handle !== undefined) due.delete((handle as { id: number }).id)
    },
    every(fn, ms) {
      const id = ++next
      due.set(id, { at: now + ms, fn, every: ms })
      return { id }
    },
    async advance(ms) {
      const end = now + ms
      for (;;) {
        const first = [...due].sort((a, b) => a[1].at - b[1].at || a[0] - b[0])[0]
        if (first === undefined || first[1].at > end) break
        const [id, t] = first
        now = t.at
        if (t.every === undefined) due.delete(id)
        else t.at += t.every
        t.fn()
        // Let the link's promise chains (token fetch) run before the next timer.
        for (let i = 0; i < 5; i++) await Promise.resolve()
      }
      now = end
    },
    pending: () => due.size,
  }
}
