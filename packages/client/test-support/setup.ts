// Shared test setup: a schema with a correction (stock oversold) and a request type (gift
// card), a seeded random source that prints its seed, and a client factory for Node
// (fake-indexeddb + ws).
// idb checks `instanceof IDBRequest` and friends against the globals, so the fake's classes
// must be global; each client still gets its own injected factory (its own databases).
import 'fake-indexeddb/auto'
import { IDBFactory, IDBKeyRange } from 'fake-indexeddb'
import { WebSocket } from 'ws'
import type { Client, ClientOptions } from '../src/client.ts'
import { createClient } from '../src/client.ts'
import { schema } from './schema.ts'
import type { WebSocketConstructor } from '../src/transport.ts'

export { card, order, schema, stock } from './schema.ts'

/** mulberry32: small, seeded, good enough for ids and jitter in tests. */
export function seededRandom(seed: number): (bytes: Uint8Array) => void {
  let a = seed >>> 0
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  return (bytes) => {
    for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(next() * 256)
  }
}

export function testSeed(name: string): number {
  // One base seed per run (printed); each named use mixes its name in, so two clients of one
  // test never share a random stream (and so never share a clientId).
  const base = Number(process.env.LEDGERLINE_SEED ?? Math.floor(Math.random() * 2 ** 31))
  let seed = base >>> 0
  for (let i = 0; i < name.length; i++)
    seed = Math.imul(seed ^ name.charCodeAt(i), 0x01000193) >>> 0
  process.stdout.write(`[seed] ${name}: LEDGERLINE_SEED=${base}\n`)
  return seed
}

export type TestClientOptions = Partial<ClientOptions> & Pick<ClientOptions, 'url' | 'token'>

export function makeClient(options: TestClientOptions & { idb?: IDBFactory }): Client {
  return createClient({
    schema,
    dbName: 'test',
    indexedDB: options.idb ?? new IDBFactory(),
    IDBKeyRange,
    WebSocket: WebSocket as unknown as WebSocketConstructor,
    locks: null,
    BroadcastChannel: null,
    persist: false,
    ...options,
  })
}

export async function eventually(
  check: () => boolean | Promise<boolean>,
  timeoutMs = 20_000,
  what = 'condition',
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}
