// Goal: finding D of the product simulation (issue 15) at the relay — when a store hub's link is
// welcomed by another head office log (restored, replaced), a register that subscribes through
// the hub afterwards gets the new log's entries only, never the old log's at offsets the new
// one reuses. Method: in-process relays on loopback. Head office A holds three sales of one
// entity (one partition); a register on the hub follows them live (the relay's shared tail
// then covers them). The hub's upstream list is [A through a proxy, head office B]; the proxy
// is cut for good, the link moves on to B (another log id: the mirror is emptied). B gets two
// sales of the same entity, at the offsets A's first two had; a register that subscribes
// through the hub between them must receive exactly B's two.
import { randomBytes } from 'node:crypto'
import { afterEach, describe, expect, it } from 'vitest'
import type { StoredEntry } from '@ledgerline/core'
import type { EntriesMessage, ErrorMessage } from '@ledgerline/protocol'
import { makeEntry, pushAcked, TENANT, token } from '../edges.test-helper.ts'
import type { Relay } from '../index.ts'
import { openClient, waitFor } from '../wire-client.test-helper.ts'
import type { WireClient } from '../wire-client.test-helper.ts'
import { startProxy, startTestRelay } from './hub.test-helper.ts'

const undo: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const u of undo.splice(0).reverse()) await u()
})

/** Bound of every wait: far above what a step takes on a loaded machine. */
const WAIT_MS = 20_000
const HUB_GRANTS = { sub: 'hub-store-9', read: ['*'], write: [], forward: ['sale/*'] }
const ENTITY = 'sale/day-1'

const newClientId = (): string => randomBytes(16).toString('hex')

async function connect(url: string, sub: string): Promise<WireClient> {
  const client = await openClient(url, { clientId: newClientId() })
  undo.push(() => client.close())
  const answer = await client.hello(await token({ sub }))
  if (answer.type !== 'welcome') throw new Error(`not welcomed: ${JSON.stringify(answer)}`)
  return client
}

function subscribe(client: WireClient): void {
  client.send({ type: 'subscribe', sub: 1, scope: ['*'], cursors: {}, credit: 64 })
}

function confirmed(client: WireClient): StoredEntry[] {
  return client.received
    .filter((m): m is EntriesMessage => m.type === 'entries')
    .flatMap((m) => [...m.entries])
}

/** A writer at head office `hq`: sells one of `ENTITY` per push (one commit each). */
async function seller(hq: Relay): Promise<() => Promise<string>> {
  const writer = await connect(hq.url, 'hq-writer')
  let seq = 0
  return async () => {
    seq++
    const sale = makeEntry(writer.clientId, seq, ENTITY, 'sold', { n: seq })
    const [result] = await pushAcked(writer, seq, [sale])
    expect(result?.status).toBe('appended')
    return sale.id
  }
}

/** Polls an async condition every 20 ms until true, for at most `WAIT_MS`. */
async function eventually(condition: () => Promise<boolean>, what: string): Promise<void> {
  const until = Date.now() + WAIT_MS
  while (!(await condition())) {
    if (Date.now() > until) throw new Error(`not in time: ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

/** The ids the hub's mirror holds of `ENTITY`. */
async function mirrored(hub: Relay): Promise<string[]> {
  const all: string[] = []
  for (let p = 0; p < hub.store.partitions; p++) {
    const read = await hub.store.readPartition(TENANT, p, 0, 1_000)
    all.push(...read.entries.filter((e) => e.entity === ENTITY).map((e) => e.id))
  }
  return all
}

describe('a store hub welcomed by another head office log', () => {
  // Failed on b39511a: the second register got A's entries — the shared tail still held them
  // at the offsets B reuses.
  it('serves a register that subscribes afterwards the new log only', async () => {
    const a = await startTestRelay(undo)
    const b = await startTestRelay(undo)
    const proxy = await startProxy(Number(new URL(a.url).port), undo)
    const hub = await startTestRelay(undo, {
      upstream: { url: [proxy.url, b.url], token: await token(HUB_GRANTS) },
    })
    await waitFor(() => hub.store.partitions > 0, WAIT_MS)
    const logA = await a.store.identity()
    expect(await hub.store.identity()).toEqual(logA)

    // A register live before the sales: it reads each of them through the shared tail.
    const first = await connect(hub.url, 'till-1')
    subscribe(first)
    await first.next((m) => m.type === 'store', WAIT_MS)
    const sellAtA = await seller(a)
    const fromA = [await sellAtA(), await sellAtA(), await sellAtA()]
    await waitFor(() => confirmed(first).length === 3, WAIT_MS)
    expect(confirmed(first).map((e) => e.id)).toEqual(fromA)

    // A is gone for this store: the link moves on to B, another log, and empties the mirror.
    proxy.cut()
    const logB = await b.store.identity()
    expect(logB.id).not.toBe(logA.id)
    await eventually(async () => (await hub.store.identity()).id === logB.id, 'welcomed by B')
    // The register welcomed on A's log is told to connect again (`session.ts` invariant 12).
    const ended = await first.next<ErrorMessage>((m) => m.type === 'error', WAIT_MS)
    expect(ended.kind).toBe('shutting_down')

    const sellAtB = await seller(b)
    const b1 = await sellAtB()
    await eventually(async () => (await mirrored(hub)).length === 1, "B's first in the mirror")
    const second = await connect(hub.url, 'till-2')
    subscribe(second)
    await waitFor(() => confirmed(second).length >= 1, WAIT_MS)
    // Live now at B's first offset: B's next sale reaches it through the shared tail.
    const b2 = await sellAtB()
    await eventually(async () => (await mirrored(hub)).length === 2, "B's second in the mirror")
    await waitFor(() => confirmed(second).length >= 2, WAIT_MS)
    expect(confirmed(second).map((e) => e.id)).toEqual([b1, b2])
  })
})
