// Goal: one tab per database leads at a time and the next one takes over when it closes; a
// client without Web Locks leads at once (but never synchronously); messages reach the other
// tabs and never come back to their sender; a closed tab hears nothing more.
// Method: a Web Locks stand-in with an exclusive queue per name, Node's BroadcastChannel.
import { describe, expect, it } from 'vitest'
import { fakeLocks } from '../test-support/locks.ts'
import { settle } from '../test-support/manual-scheduler.ts'
import type { TabMessage } from './tabs.ts'
import { createTabs } from './tabs.ts'

const tab = (locks: LockManager | null, dbName = 'db') => {
  const got: TabMessage[] = []
  let led = 0
  const tabs = createTabs({
    dbName,
    locks,
    BroadcastChannel: globalThis.BroadcastChannel,
    defer: (fn) => queueMicrotask(fn),
    onLeader: () => led++,
    onMessage: (m) => got.push(m),
  })
  return { tabs, got, led: () => led }
}

describe('tabs', () => {
  it('lets one tab lead at a time and hands over when it closes', async () => {
    const locks = fakeLocks()
    const a = tab(locks)
    const b = tab(locks)
    await settle()
    expect([a.tabs.isLeader(), b.tabs.isLeader()]).toEqual([true, false])
    a.tabs.close()
    await settle()
    expect(b.tabs.isLeader()).toBe(true)
    expect([a.led(), b.led()]).toEqual([1, 1])
    b.tabs.close()
  })

  it('leads at once without Web Locks, yet not from inside createTabs', async () => {
    const t = tab(null)
    expect(t.led()).toBe(0)
    await settle()
    expect(t.led()).toBe(1)
    expect(t.tabs.isLeader()).toBe(true)
    t.tabs.close()
  })

  it('tells the other tabs of a database, not itself, and not after close', async () => {
    const a = tab(null, 'shared')
    const b = tab(null, 'shared')
    const elsewhere = tab(null, 'other')
    const message: TabMessage = {
      t: 'changed',
      entities: ['stock/a'],
      outbox: true,
      corrections: 0,
    }
    a.tabs.post(message)
    await new Promise((r) => setTimeout(r, 50))
    expect(b.got).toEqual([message])
    expect(a.got).toEqual([])
    expect(elsewhere.got).toEqual([])
    b.tabs.close()
    a.tabs.post(message)
    await new Promise((r) => setTimeout(r, 50))
    expect(b.got.length).toBe(1)
    a.tabs.close()
    elsewhere.tabs.close()
  })
})
