// Goal: a url list against the REAL relay as head office: a dead first relay gives way, the
// relay's protocol-3 welcome says `head_office`, and the status says so (head office reached
// directly, no store layer, nothing stored).
// Method: the real relay in-process (SQLite log) on loopback; a port nothing listens on first.
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { startRelay, type TestRelay } from '../test-support/relay.ts'
import { makeClient, seededRandom, testSeed } from '../test-support/setup.ts'
import type { Client } from './client.ts'

let server: TestRelay
const clients: Client[] = []
beforeEach(async () => {
  server = await startRelay()
})
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close()
  await server.close()
})

describe('url list with the real relay as head office', () => {
  it('fails over from a dead relay to head office and syncs there', async () => {
    const hq = `ws://127.0.0.1:${server.relay.port}/sync`
    const c = makeClient({
      url: ['ws://127.0.0.1:9/sync', hq],
      token: () => server.token(),
      random: seededRandom(testSeed('real-failover')),
    })
    clients.push(c)
    const sale = await c.append('stock/s1:grinder', 'stock.moved', { qty: 4 })
    expect(await c.synced({ timeoutMs: 20_000 })).toEqual({ _tag: 'synced' })
    expect(c.status()).toMatchObject({
      relay: { url: hq, role: 'head_office' },
      headOffice: 'reachable',
      storedEntries: 0,
      outboxEntries: 0,
    })
    expect(await c.outcome(sale.id)).toMatchObject({ _tag: 'appended', version: 1 })
    expect(c.get('stock/s1:grinder').store).toEqual([])
  })
})
