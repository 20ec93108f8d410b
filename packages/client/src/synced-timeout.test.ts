// Goal: `synced({ timeoutMs })` answers by its bound even while the client store is slow to
// answer (a register storing a large catch-up: its counters read waits behind page writes), so
// an app's "wait at most N s" never turns into a wait without end (a bootstrap bench's full
// replay of 1,000,000 entries in Chromium got no answer 30 s past a 240 s bound, 2026-12-02).
// Method: a memory client store whose `counters()` stops answering once told to; a client with
// an entry in its outbox (offline: nothing can make it synced) asks `synced({ timeoutMs: 200 })`.
// It must answer `timeout` well inside a guard of several seconds.
import { afterEach, expect, it } from 'vitest'
import { createMemoryClientDatabase, createMemoryClientStore } from './memory-client-store.ts'
import type { ClientStore } from './client-store.ts'
import type { Client } from './client-api.ts'
import { makeClient, seededRandom, testSeed } from '../test-support/setup.ts'

const TOKEN = 'x.eyJ0ZW5hbnQiOiJ0MSJ9.y'
const GUARD_MS = 5_000

const clients: Client[] = []
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close()
})

it('answers timeout by its bound while the client store does not answer its counters', async () => {
  let stalled = false
  const store = async (): Promise<ClientStore> => {
    const inner = createMemoryClientStore({ database: createMemoryClientDatabase() })
    return new Proxy(inner, {
      get(target, key, receiver) {
        if (key === 'counters' && stalled) return () => new Promise(() => {})
        return Reflect.get(target, key, receiver) as unknown
      },
    })
  }
  const c = makeClient({
    url: 'ws://127.0.0.1:9/sync',
    token: TOKEN,
    random: seededRandom(testSeed('synced-timeout')),
    indexedDB: undefined,
    IDBKeyRange: undefined,
    clientStore: store,
  })
  clients.push(c)
  await c.append('order/o1', 'order.line', {})
  stalled = true
  const guard = new Promise<'no answer'>((resolve) =>
    setTimeout(() => resolve('no answer'), GUARD_MS),
  )
  const answer = await Promise.race([c.synced({ timeoutMs: 200 }), guard])
  expect(answer).toMatchObject({ _tag: 'timeout' })
})
