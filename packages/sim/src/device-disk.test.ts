// Goal: the crash model of a till's disk keeps exactly what a browser on a power cut keeps: a
// strict commit that completed, a relaxed commit once flushed, never a transaction that did
// not complete; and a copy of the disk put back is what the next boot sees. Method: raw
// IndexedDB requests on fake-indexeddb, run on the simulation's loop, with power cuts (crash,
// then a boot) between them; what the next boot reads is compared with what was written.
import { createPrng, createSimScheduler } from '@ledgerline/testkit'
import { afterEach, describe, expect, it } from 'vitest'
import { createDeviceDisk, prepareDeviceDisks } from './device-disk.ts'
import { SIM_RELAXED_FLUSH_MS_MAX } from './limits.ts'
import { createLife, createSimLoop, drain } from './sim-loop.ts'
import type { SimLoop } from './sim-loop.ts'

/** Each test's loop gives setImmediate back when the test ends, however it ends. */
const loops: SimLoop[] = []
afterEach(() => {
  for (const loop of loops.splice(0)) loop.close()
})

describe('device disk', () => {
  it('keeps strict and flushed commits, loses unflushed relaxed and unfinished ones', async () => {
    const w = await world()
    let db = await w.boot()
    await w.put(db, 'a', 1, 'strict')
    await w.put(db, 'flushed', 2, 'relaxed')
    await w.wait(SIM_RELAXED_FLUSH_MS_MAX + 1)
    await w.put(db, 'unflushed', 3, 'relaxed')
    // A transaction that has not completed when the power goes.
    const tx = db.transaction(['kv'], 'readwrite', { durability: 'strict' })
    tx.objectStore('kv').put(4, 'unfinished')
    w.disk.crash()
    db = await w.boot()
    expect(await w.get(db, 'a')).toBe(1)
    expect(await w.get(db, 'flushed')).toBe(2)
    expect(await w.get(db, 'unflushed')).toBeUndefined()
    expect(await w.get(db, 'unfinished')).toBeUndefined()
    expect(w.disk.stats.relaxedLost).toBe(1)
  })

  it('a strict commit flushes the relaxed ones before it', async () => {
    const w = await world()
    let db = await w.boot()
    await w.put(db, 'relaxed', 1, 'relaxed')
    await w.put(db, 'strict', 2, 'strict')
    w.disk.crash()
    db = await w.boot()
    expect(await w.get(db, 'relaxed')).toBe(1)
    expect(await w.get(db, 'strict')).toBe(2)
  })

  it('a copy put back is what the next boot reads', async () => {
    const w = await world()
    let db = await w.boot()
    await w.put(db, 'before', 1, 'strict')
    const copy = w.disk.copy()
    await w.put(db, 'after', 2, 'strict')
    await w.put(db, 'before', 3, 'strict')
    w.disk.crash()
    w.disk.restore(copy)
    db = await w.boot()
    expect(await w.get(db, 'before')).toBe(1)
    expect(await w.get(db, 'after')).toBeUndefined()
  })
})

async function world() {
  await prepareDeviceDisks()
  const sched = createSimScheduler()
  const loop = createSimLoop(sched)
  loops.push(loop)
  const disk = createDeviceDisk('till', createPrng(7))
  let boots = 0
  /** Runs `work` on the loop (IndexedDB's tasks are events) until it settles. */
  const on = async <T>(work: () => Promise<T>): Promise<T> => {
    let done = false
    const promise = work().finally(() => {
      done = true
    })
    // What `work` does before its first IndexedDB request runs first (microtasks only).
    await drain()
    await loop.run(() => done, sched.now() + 60_000)
    return await promise
  }
  const request = <T>(r: IDBRequest<T>) =>
    new Promise<T>((resolve, reject) => {
      r.onsuccess = () => resolve(r.result)
      r.onerror = () => reject(r.error)
    })
  return {
    disk,
    boot: () =>
      on(async () => {
        const factory = await disk.boot(createLife(sched, `boot ${++boots}`))
        const open = factory.open('db', 1)
        open.onupgradeneeded = () => open.result.createObjectStore('kv')
        return await request(open)
      }),
    put: (db: IDBDatabase, key: string, value: number, durability: 'strict' | 'relaxed') =>
      on(
        () =>
          new Promise<void>((resolve, reject) => {
            const tx = db.transaction(['kv'], 'readwrite', { durability })
            tx.objectStore('kv').put(value, key)
            tx.oncomplete = () => resolve()
            tx.onerror = () => reject(tx.error)
          }),
      ),
    get: (db: IDBDatabase, key: string) =>
      on(() => request(db.transaction(['kv'], 'readonly').objectStore('kv').get(key))),
    wait: (ms: number) => loop.run(() => false, sched.now() + ms),
  }
}
