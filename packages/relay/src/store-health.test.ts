// Goal: the store health wrapper's own rules, which the relay tests do not reach: an append
// slower than SLOW_COMMIT_MS is one `slow_commit` line; a full commit queue or a closed store is
// not the log failing (no `store_lost`, readiness unchanged); a failed append holds readiness
// down for WRITE_FAILURE_HOLD_MS only, and one that succeeds ends the hold at once.
// Method: `withStoreHealth` over the memory store of `@ledgerline/log` with a fake clock and
// appends made to resolve, fail or wait on a switch; the logger's lines are kept.
import { pino } from 'pino'
import { describe, expect, it } from 'vitest'
import { createMemoryLogStore, LogStoreError } from '@ledgerline/log'
import { makeEntry } from './edges.test-helper.ts'
import { RelayError } from './relay-error.ts'
import { withAppend } from './store-faults.test-helper.ts'
import { withStoreHealth } from './store-health.ts'

function harness() {
  const lines: Record<string, unknown>[] = []
  const logger = pino(
    { level: 'info' },
    { write: (l: string) => void lines.push(JSON.parse(l) as Record<string, unknown>) },
  )
  const clock = { t: 1_000 }
  const behaviour: { next: 'ok' | 'fail' | 'overloaded' | 'slow' } = { next: 'ok' }
  const base = createMemoryLogStore({})
  const faulty = withAppend(base, async (tenant, items, pusher) => {
    const mode = behaviour.next
    if (mode === 'fail') throw new RelayError('store_failed', 'append failed: disk I/O error')
    if (mode === 'overloaded') throw new LogStoreError('overloaded', 'queue full')
    if (mode === 'slow') clock.t += 1_500
    return await base.append(tenant, items, pusher)
  })
  const store = withStoreHealth(faulty, {
    logger,
    now: () => clock.t,
    slowCommitMs: 1_000,
    writeFailureHoldMs: 30_000,
  })
  let seq = 0
  const append = () =>
    store.append('acme', [
      { entry: makeEntry('a'.repeat(32), ++seq, 'order/o1', 'order.line', {}) },
    ])
  const events = (e: string) => lines.filter((l) => l.event === e)
  return { store, clock, behaviour, append, events }
}

describe('withStoreHealth', () => {
  it('logs one slow_commit line per slow append, with its duration', async () => {
    const h = harness()
    await h.append()
    expect(h.events('slow_commit')).toHaveLength(0)
    h.behaviour.next = 'slow'
    await h.append()
    expect(h.events('slow_commit')).toEqual([
      expect.objectContaining({ durationMs: 1_500, entries: 1, tenant: 'acme' }),
    ])
  })

  it('does not count a full queue as the log failing', async () => {
    const h = harness()
    h.behaviour.next = 'overloaded'
    await expect(h.append()).rejects.toThrow('queue full')
    expect(h.events('store_lost')).toHaveLength(0)
    expect((await h.store.health.readiness())._tag).toBe('ready')
  })

  it('holds readiness down after a failed append, until the hold ends or an append works', async () => {
    const h = harness()
    h.behaviour.next = 'fail'
    await expect(h.append()).rejects.toThrow('disk I/O error')
    await expect(h.append()).rejects.toThrow('disk I/O error')
    expect(h.events('store_lost')).toHaveLength(1)
    expect(await h.store.health.readiness()).toMatchObject({
      _tag: 'not_writing',
      message: expect.stringContaining('disk I/O error'),
    })
    h.clock.t += 29_000
    expect((await h.store.health.readiness())._tag).toBe('not_writing')
    // Nobody wrote for the whole hold: ready again, but still lost until an append works.
    h.clock.t += 2_000
    expect((await h.store.health.readiness())._tag).toBe('ready')
    expect(h.events('store_regained')).toHaveLength(0)
    h.behaviour.next = 'fail'
    await expect(h.append()).rejects.toThrow('disk I/O error')
    expect((await h.store.health.readiness())._tag).toBe('not_writing')
    h.behaviour.next = 'ok'
    await h.append()
    expect((await h.store.health.readiness())._tag).toBe('ready')
    expect(h.events('store_regained')).toEqual([expect.objectContaining({ op: 'write' })])
    expect(h.events('store_lost')).toHaveLength(1)
  })
})
