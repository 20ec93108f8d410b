// Goal: status is published once per change (the age of the oldest outbox entry aside), takes
// an append's counters from its own write without a read, refuses a read that overlapped an
// append, shares one read among events within COUNTERS_DELAY_MS, stops when closed, and wakes
// its waits on a change or at their deadline.
// Method: a client store stand-in whose counter reads the test resolves by hand, a manual
// scheduler.
import { describe, expect, it } from 'vitest'
import { CLIENT, meta } from '../test-support/entries.ts'
import { createManualScheduler, settle } from '../test-support/manual-scheduler.ts'
import type { ClientStatus } from './client-api.ts'
import type { Counters } from './client-store.ts'
import { COUNTERS_DELAY_MS } from './limits.ts'
import { createStatus } from './status.ts'

const counters = (patch: Partial<Counters> = {}): Counters => ({
  clientId: CLIENT,
  clientIds: [CLIENT],
  seqLast: 0,
  outboxEntries: 0,
  outboxBytes: 0,
  oldestOutboxAt: null,
  correctionsUnseen: 0,
  ackedWaiting: 0,
  storedEntries: 0,
  ...patch,
})

function setup() {
  const scheduler = createManualScheduler(10_000)
  const reads: ((c: Counters) => void)[] = []
  const status = createStatus({
    now: scheduler.now,
    scheduler,
    clientStore: Promise.resolve({
      counters: () => new Promise<Counters>((resolve) => reads.push(resolve)),
    }),
    isLeader: () => true,
  })
  const published: ClientStatus[] = []
  status.onStatus((s) => published.push(s))
  return { status, scheduler, reads, published }
}

describe('status', () => {
  it('publishes once per change, and not for the age of the oldest outbox entry alone', async () => {
    const t = setup()
    t.status.setCounters(counters({ outboxEntries: 2, oldestOutboxAt: 9_000 }))
    expect(t.published.length).toBe(1)
    expect(t.status.status()).toMatchObject({
      outboxEntries: 2,
      oldestOutboxAgeMs: 1_000,
      leader: true,
    })
    const same = t.status.status()
    await t.scheduler.advance(5_000)
    t.status.publish()
    expect(t.status.status()).toBe(same)
    t.status.setConnection({ online: true })
    t.status.setConnection({ online: true })
    expect(t.published.map((s) => s.online)).toEqual([false, true])
  })

  it('takes an append’s counters from its own write, and drops a read that overlapped it', async () => {
    const t = setup()
    t.status.setCounters(counters())
    const refresh = t.status.refreshCounters()
    await settle()
    expect(t.reads.length).toBe(1)
    t.status.appended(meta({ seqLast: 3, outboxEntries: 3, outboxBytes: 300 }), 9_500, true)
    expect(t.status.status()).toMatchObject({ outboxEntries: 3, oldestOutboxAt: 9_500 })
    t.reads[0]?.(counters()) // read before the append committed: older than what it wrote
    await refresh
    expect(t.status.status().outboxEntries).toBe(3)
    // It reads again shortly instead, and takes that read.
    await t.scheduler.advance(COUNTERS_DELAY_MS)
    expect(t.reads.length).toBe(2)
    t.reads[1]?.(counters({ outboxEntries: 1, oldestOutboxAt: 9_600 }))
    await settle()
    expect(t.status.status()).toMatchObject({ outboxEntries: 1, oldestOutboxAt: 9_600 })
  })

  it('shares one read among events within COUNTERS_DELAY_MS, and reads no more once closed', async () => {
    const t = setup()
    for (let i = 0; i < 5; i++) t.status.scheduleCounters()
    await t.scheduler.advance(COUNTERS_DELAY_MS)
    expect(t.reads.length).toBe(1)
    t.status.scheduleCounters()
    expect(t.status.close('closed')).toBe(true)
    expect(t.status.close('versionchange')).toBe(false)
    t.status.scheduleCounters()
    await t.scheduler.advance(COUNTERS_DELAY_MS * 2)
    expect(t.reads.length).toBe(1)
    t.status.publish()
    expect(t.status.status().closed).toBe('closed')
  })

  it('wakes a wait on a change, or at its deadline', async () => {
    const t = setup()
    let woke = 0
    void t.status.waitForChange(1_000).then(() => woke++)
    void t.status.waitForChange(1_000).then(() => woke++)
    t.status.wake()
    await settle()
    expect(woke).toBe(2)
    void t.status.waitForChange(1_000).then(() => woke++)
    await t.scheduler.advance(999)
    expect(woke).toBe(2)
    await t.scheduler.advance(1)
    await settle()
    expect(woke).toBe(3)
    expect(t.scheduler.pending()).toBe(0)
  })
})
