// Goal: the in-memory client store passes `runClientStoreContract` (so the simulation may use
// it instead of IndexedDB), copies what goes in and out as IndexedDB does, plays a wiped
// database, and carries a whole client (append, sync, reload) without any IndexedDB.
// Method: the contract suite; a client on a memory database against the steerable relay
// (test-support/fake-relay.ts), closed and opened again on the same database.
import { afterEach, describe, expect, it } from 'vitest'
import { runClientStoreContract } from '@ledgerline/testkit'
import { createFakeRelay, type FakeRelay } from '../test-support/fake-relay.ts'
import { makeClient, seededRandom, testSeed } from '../test-support/setup.ts'
import type { Client } from './client-api.ts'
import type { Entry } from '@ledgerline/core'
import { createMemoryClientDatabase, createMemoryClientStore } from './memory-client-store.ts'

runClientStoreContract('memory', async () => {
  const database = createMemoryClientDatabase()
  return {
    open: async (o) => createMemoryClientStore({ database, schema: o?.schema }),
    cleanup: async () => {},
  }
})

const TOKEN = 'x.eyJ0ZW5hbnQiOiJ0MSJ9.y' // payload {"tenant":"t1"}; the fake relay checks nothing
const CLIENT = 'a'.repeat(32)
let relay: FakeRelay | undefined
const clients: Client[] = []
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close()
  await relay?.close()
  relay = undefined
})

describe('memory client store', () => {
  it('copies values in and out, so no caller shares an object with the database', async () => {
    const store = createMemoryClientStore()
    await store.init(() => CLIENT, 1)
    const data = { qty: 1, tags: ['a'] }
    const made: Entry[] = []
    await store.append(
      (clientId, seq) => {
        const e: Entry = {
          id: `${clientId}-${seq}`,
          tenant: 't1',
          entity: 'stock/a',
          kind: 'stock.moved',
          data,
          intent: 'fact',
          clientId,
          clientSeq: seq,
          hlc: `${'1'.padStart(15, '0')}:00000:${clientId}`,
          occurredAt: 1,
        }
        made.push(e)
        return made
      },
      { entriesMax: 10, bytesMax: 1e6 },
      1,
      () => 10,
    )
    data.tags.push('changed after the append')
    const [read] = await store.readOutbox(undefined, 10, 1e6)
    if (read === undefined) throw new Error('the appended record reads back')
    expect(read.entry.data).toEqual({ qty: 1, tags: ['a'] })
    ;(read.entry.data as { qty: number }).qty = 99
    expect((await store.readOutbox(undefined, 10, 1e6))[0]?.entry.data).toMatchObject({ qty: 1 })
    // What cannot be cloned is refused, as IndexedDB refuses it.
    const error = await store
      .putSnapshot({ entity: 'stock/a', version: 1, state: () => 1, through: 1, typeKey: 'k' })
      .catch((e: unknown) => e)
    expect(error).toBeInstanceOf(Error)
  })

  it('starts over under a new client id when its database is wiped', async () => {
    const database = createMemoryClientDatabase()
    const store = createMemoryClientStore({ database })
    await store.init(() => CLIENT, 1)
    database.wipe()
    expect((await store.counters().catch((e: unknown) => e)) as { kind: string }).toMatchObject({
      kind: 'closed',
    })
    const again = await store.init(() => 'b'.repeat(32), 2)
    expect(again).toMatchObject({ created: true, meta: { clientId: 'b'.repeat(32) } })
  })

  it('carries a client through offline appends, a reload and a sync, without IndexedDB', async () => {
    const database = createMemoryClientDatabase()
    const open = (url: string, name: string) => {
      const c = makeClient({
        url,
        token: TOKEN,
        random: seededRandom(testSeed(name)),
        indexedDB: undefined,
        IDBKeyRange: undefined,
        clientStore: async () => createMemoryClientStore({ database }),
      })
      clients.push(c)
      return c
    }
    const offline = open('ws://127.0.0.1:9/sync', 'memory-offline')
    for (let i = 0; i < 5; i++) await offline.append('order/m', 'order.line', { i })
    expect(offline.status().outboxEntries).toBe(5)
    await offline.close()
    expect(database.outboxSize()).toBe(5)
    relay = await createFakeRelay()
    const online = open(relay.url, 'memory-online')
    expect(await online.synced({ timeoutMs: 20_000 })).toEqual({ _tag: 'synced' })
    expect(relay.log.map((e) => e.clientSeq)).toEqual([1, 2, 3, 4, 5])
    expect((await online.load<{ lines: number }>('order/m')).confirmed).toEqual({ lines: 5 })
    expect(database.outboxSize()).toBe(0)
  })
})
