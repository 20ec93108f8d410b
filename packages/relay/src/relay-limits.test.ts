// Goal: issue 13 case 8 — the relay has global bounds, and past each it answers `overloaded` with
// a retry hint instead of growing: connections per relay (CONNECTIONS_MAX) and per tenant
// (TENANT_CONNECTIONS_MAX), entries queued for commit across connections, `/yjs` messages per
// second per connection, and awareness bytes per `/yjs` connection. On 3a8bfae none of these
// exist and `overloaded` is never sent.
// Method: real relays with small limits given as options; wire clients (`ws` + the codec) for
// `/sync`, raw `ws` sockets and unmodified y-websocket providers for `/yjs`. Over a cap, the relay
// may refuse the upgrade (503) or send `error overloaded` / close with 4503: both count. The
// commit queue runs on SQLite and PostgreSQL; the pushers back off by the hint and resend, and
// in the end every entry is in the log exactly once.
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import type { Entry } from '@ledgerline/core'
import type { WelcomeMessage } from '@ledgerline/protocol'
import {
  errorKindOf,
  LOG_KINDS,
  makeEntry,
  OVERLOADED_CLOSE_CODE,
  pushBatch,
  relayLimits,
  retryHintMs,
  startEdgeRelay,
  stopPostgres,
  TENANT,
  token,
} from './edges.test-helper.ts'
import { openClient } from './wire-client.test-helper.ts'
import type { WireClient } from './wire-client.test-helper.ts'
import { connectPeer, protocolsFor, startYjsRelay, until } from './yjs-edges.test-helper.ts'

const cleanups: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})
afterAll(() => stopPostgres())

describe('issue 13 case 8: connection caps', () => {
  it('answers connections past CONNECTIONS_MAX with overloaded and a retry hint', async () => {
    const relay = await startEdgeRelay('sqlite', { limits: relayLimits({ connectionsMax: 3 }) })
    cleanups.push(() => relay.close())
    const admitted: Admission[] = []
    for (let i = 0; i < 5; i++) admitted.push(await admit(relay.url, await token()))
    expect(admitted.map((a) => a.outcome)).toEqual([
      'welcome',
      'welcome',
      'welcome',
      'overloaded',
      'overloaded',
    ])
    const hints = admitted.flatMap((a) => (a.error === undefined ? [] : [retryHintMs(a.error)]))
    expect(hints.filter((ms) => ms <= 0)).toEqual([])
    // The cap counts open connections: one closes, another gets in.
    admitted[0]?.client?.close()
    await until(
      async () => (await admit(relay.url, await token())).outcome === 'welcome',
      'a connection after one closed',
    )
  })

  it('answers connections past TENANT_CONNECTIONS_MAX with overloaded; other tenants still connect', async () => {
    const relay = await startEdgeRelay('sqlite', {
      limits: relayLimits({ tenantConnectionsMax: 2 }),
    })
    cleanups.push(() => relay.close())
    const acme: string[] = []
    for (let i = 0; i < 3; i++) acme.push((await admit(relay.url, await token())).outcome)
    expect(acme).toEqual(['welcome', 'welcome', 'overloaded'])
    expect((await admit(relay.url, await token({ tenant: 'other' }))).outcome).toBe('welcome')
  })
})

describe.each(LOG_KINDS)('issue 13 case 8: the commit queue is bounded (%s)', (kind) => {
  it('answers pushes past the commit queue bound with overloaded, records nothing of them, and takes them later', async () => {
    // Method: PUSHERS clients push BATCHES batches of BATCH entries each, one batch in flight,
    // all at once, against a queue of 20 entries. A pusher answered `overloaded` waits the hint
    // (at most 2 s here) and resends the same batch (reconnecting if the relay closed it). Since
    // only that batch was in flight, a `duplicate` in any later ack would mean the refused batch
    // had been recorded after all.
    const PUSHERS = 24
    const BATCHES = 5
    const BATCH = 10
    const relay = await startEdgeRelay(kind, {
      limits: relayLimits({ commitQueueEntriesMax: 20 }),
    })
    cleanups.push(() => relay.close())
    const tok = await token()
    let overloaded = 0
    const errorKinds: string[] = []
    const statuses: string[] = []
    const highsAfterOverload: [number, number][] = []
    await Promise.all(
      Array.from({ length: PUSHERS }, async (_, p) => {
        const clientId = (p + 1).toString(16).padStart(2, '0').repeat(16)
        let client = await hello(relay.url, clientId, tok)
        for (let b = 0; b < BATCHES; b++) {
          const entries: Entry[] = Array.from({ length: BATCH }, (_, i) =>
            makeEntry(clientId, b * BATCH + i + 1, `order/p${p}`, 'order.line', { b, i }),
          )
          for (let attempt = 0; ; attempt++) {
            if (attempt > 50) throw new Error(`pusher ${p}: batch ${b} never acked`)
            const pushed = await pushBatch(client, b + 1, entries)
            if (pushed._tag === 'acked') {
              statuses.push(...pushed.results.map((r) => r.status))
              break
            }
            if (pushed._tag === 'error') {
              errorKinds.push(String(errorKindOf(pushed.error)))
              overloaded++
              await sleep(Math.min(2_000, Math.max(50, retryHintMs(pushed.error))))
            }
            if (client.ws.readyState !== client.ws.OPEN) {
              client.close()
              client = await hello(relay.url, clientId, tok)
              const high = (client.received.find((m) => m.type === 'welcome') as WelcomeMessage)
                .clientSeqHigh
              highsAfterOverload.push([high, b * BATCH])
            }
          }
        }
        client.close()
      }),
    )
    expect(overloaded, 'pushes answered overloaded').toBeGreaterThan(0)
    expect(errorKinds.filter((k) => k !== 'overloaded')).toEqual([])
    expect(statuses.filter((s) => s !== 'appended')).toEqual([])
    for (const [high, before] of highsAfterOverload) expect(high).toBe(before)
    for (let p = 0; p < PUSHERS; p++) {
      const ledger = await relay.store.readEntity(TENANT, `order/p${p}`, 1, 1_000)
      expect(ledger).toHaveLength(BATCHES * BATCH)
      expect(new Set(ledger.map((e) => e.id)).size).toBe(BATCHES * BATCH)
    }
  }, 90_000)
})

describe('issue 13 case 8: /yjs bounds', () => {
  it('closes a /yjs connection that sends more messages per second than allowed', async () => {
    const yjs = await startYjsRelay({ limits: relayLimits({ yjsMessagesPerS: 50 }) })
    cleanups.push(() => yjs.close())
    const tok = await token()
    const flood = new WebSocket(`${yjs.base}/yjs/flood`, protocolsFor(tok))
    cleanups.push(() => flood.terminate())
    const closed = new Promise<number>((resolve) => flood.on('close', (code) => resolve(code)))
    flood.on('error', () => {})
    await new Promise<void>((resolve, reject) => {
      flood.once('open', () => resolve())
      flood.once('error', reject)
    })
    // Sync step 1 with an empty state vector: tiny, and the relay answers every one.
    const step1 = new Uint8Array([0, 0, 1, 0])
    for (let i = 0; i < 2_000; i++) flood.send(step1)
    const code = await Promise.race([closed, sleep(10_000).then(() => -1)])
    expect(code, 'close code of the flooding connection (-1: still open after 10 s)').toBeOneOf([
      4429,
      OVERLOADED_CLOSE_CODE,
    ])
    // The relay keeps serving others.
    const a = connectPeer(yjs.base, 'calm', tok)
    const b = connectPeer(yjs.base, 'calm', tok)
    cleanups.push(
      () => a.destroy(),
      () => b.destroy(),
    )
    await until(() => a.provider.synced && b.provider.synced, 'peers synced')
    a.doc.getText('t').insert(0, 'still served')
    await until(() => b.doc.getText('t').toString() === 'still served', 'an edit relayed')
  })

  it('bounds the awareness state of a /yjs connection and never relays an oversized one', async () => {
    const yjs = await startYjsRelay({ limits: relayLimits({ yjsAwarenessBytesMax: 16 * 1024 }) })
    cleanups.push(() => yjs.close())
    const tok = await token()
    const a = connectPeer(yjs.base, 'aware', tok)
    const b = connectPeer(yjs.base, 'aware', tok)
    cleanups.push(
      () => a.destroy(),
      () => b.destroy(),
    )
    await until(() => a.provider.synced && b.provider.synced, 'peers synced')
    a.provider.awareness.setLocalStateField('blob', 'x'.repeat(200_000))
    await until(() => a.closes.length > 0, 'the relay to close the oversized awareness sender')
    const seen = [...b.provider.awareness.getStates().values()].some(
      (state) => (state as { blob?: unknown }).blob !== undefined,
    )
    expect(seen, 'the other peer received the 200 KB awareness state').toBe(false)
  })
})

interface Admission {
  readonly outcome: string
  readonly client?: WireClient | undefined
  readonly error?: Readonly<Record<string, unknown>> | undefined
}

/** Opens a socket and says hello: welcomed, or how it was turned away. */
async function admit(url: string, tok: string): Promise<Admission> {
  let client: WireClient
  try {
    client = await openClient(url)
  } catch (error) {
    if (/upgrade refused: 503/.test(String(error))) return { outcome: 'overloaded' }
    throw error
  }
  cleanups.push(() => client.close())
  let answer
  try {
    answer = await client.hello(tok)
  } catch {
    const { code } = await client.closed
    return { outcome: code === OVERLOADED_CLOSE_CODE ? 'overloaded' : `closed ${code}` }
  }
  if (answer.type === 'welcome') return { outcome: 'welcome', client }
  const error = answer as unknown as Record<string, unknown>
  const kind = errorKindOf(answer)
  return { outcome: kind === 'overloaded' ? 'overloaded' : `error ${String(kind)}`, error }
}

async function hello(url: string, clientId: string, tok: string): Promise<WireClient> {
  for (let attempt = 0; ; attempt++) {
    const client = await openClient(url, { clientId })
    cleanups.push(() => client.close())
    const answer = await client.hello(tok).catch(() => undefined)
    if (answer?.type === 'welcome') return client
    client.close()
    if (attempt >= 20) throw new Error(`no welcome for ${clientId}: ${JSON.stringify(answer)}`)
    await sleep(Math.min(2_000, answer === undefined ? 200 : retryHintMs(answer as never)))
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}
