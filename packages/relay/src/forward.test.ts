// Goal: head office accepts a store hub's forwarded pushes (issue 15, design "Forwarding at head
// office"). A session whose token has `grants.forward` pushes entries of other clientIds with
// `push.subjects`; each entry is checked against the forward grant (outside → refused
// `forbidden`, recorded), its clientId bound to and checked against the named subject (another
// subject → `id_conflict` for that entry, nothing recorded, the session stays open), and an
// entry that arrives through the hub and directly lands once (dedupe by id and digest). A token
// without the forward grant cannot forward. On SQLite and PostgreSQL.
import { randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import type { Entry } from '@ledgerline/core'
import type { AckResult, RelayMessage } from '@ledgerline/protocol'
import { LOG_KINDS, makeEntry, pushAcked, useEdgeRelays } from './edges.test-helper.ts'
import type { LogStore } from './index.ts'
import type { WireClient } from './wire-client.test-helper.ts'

const edges = useEdgeRelays()
const HUB_TOKEN = { sub: 'hub-7', read: ['*'], write: [], forward: ['sale/*', 'stock/*'] }

const newClientId = (): string => randomBytes(16).toString('hex')

/** A forwarded push (`subjects` named) and all its results, or the error that closed it. */
async function forward(
  hub: WireClient,
  batch: number,
  entries: readonly Entry[],
  subjects: Record<string, string>,
): Promise<readonly AckResult[] | RelayMessage> {
  hub.send({ type: 'push', batch, entries, subjects })
  const results: AckResult[] = []
  for (;;) {
    const m = await hub.next((x) => (x.type === 'ack' && x.batch === batch) || x.type === 'error')
    if (m.type !== 'ack') return m
    results.push(...m.results)
    if (m.done) return results
  }
}

function acked(answer: readonly AckResult[] | RelayMessage): readonly AckResult[] {
  if (!Array.isArray(answer)) throw new Error(`not acked: ${JSON.stringify(answer)}`)
  return answer
}

const positions = (r: AckResult | undefined) =>
  r !== undefined && (r.status === 'appended' || r.status === 'duplicate')
    ? { version: r.version, partition: r.partition, offset: r.offset }
    : r

describe.each(LOG_KINDS)('forwarding at head office, on %s', (kind) => {
  it('lands an entry once whether it comes through the hub or directly, in either order', async () => {
    const relay = await edges.start(kind, { schema: null })
    const hub = await edges.connect(relay.url, newClientId(), HUB_TOKEN)
    const till = newClientId()
    const register = await edges.connect(relay.url, till, { sub: 'till-1' })
    const first = makeEntry(till, 1, 'sale/s1', 'sold', { sku: 'grinder' })
    const second = makeEntry(till, 2, 'sale/s2', 'sold', { sku: 'kettle' })

    const [viaHub] = acked(await forward(hub, 1, [first], { [till]: 'till-1' }))
    expect(viaHub?.status).toBe('appended')
    const [direct] = await pushAcked(register, 1, [first])
    expect(direct?.status).toBe('duplicate')
    expect(positions(direct)).toEqual(positions(viaHub))

    // The other order: directly first, then through the hub.
    const [direct2] = await pushAcked(register, 2, [second])
    expect(direct2?.status).toBe('appended')
    const [viaHub2] = acked(await forward(hub, 2, [second], { [till]: 'till-1' }))
    expect(viaHub2?.status).toBe('duplicate')
    expect(positions(viaHub2)).toEqual(positions(direct2))

    const all = await readAll(relay.store)
    expect(all.filter((e) => e.id === first.id)).toHaveLength(1)
    expect(all.filter((e) => e.id === second.id)).toHaveLength(1)
  })

  it('refuses forwarded entries outside the forward grant, recorded, and goes on', async () => {
    const relay = await edges.start(kind, { schema: null })
    const hub = await edges.connect(relay.url, newClientId(), HUB_TOKEN)
    const till = newClientId()
    const outside = makeEntry(till, 1, 'price/p1', 'set', { cents: 1 })
    const inside = makeEntry(till, 2, 'sale/s1', 'sold', { sku: 'grinder' })
    const results = acked(await forward(hub, 1, [outside, inside], { [till]: 'till-1' }))
    expect(results.map((r) => r.status)).toEqual(['refused', 'appended'])
    expect(results[0]?.status === 'refused' && results[0].code).toBe('forbidden')
    // Recorded: the register resending it directly is answered the same way.
    const register = await edges.connect(relay.url, till, { sub: 'till-1' })
    const [again] = await pushAcked(register, 1, [outside])
    expect(again?.status === 'refused' && again.code).toBe('forbidden')
    expect((await readAll(relay.store)).map((e) => e.id)).toEqual([inside.id])
  })

  it('refuses a forwarded clientId of another subject per entry, unrecorded, session open', async () => {
    const relay = await edges.start(kind, { schema: null })
    const taken = newClientId()
    const owner = await edges.connect(relay.url, taken, { sub: 'till-owner' })
    await pushAcked(owner, 1, [makeEntry(taken, 1, 'sale/o1', 'sold', {})])
    const hub = await edges.connect(relay.url, newClientId(), HUB_TOKEN)
    const other = newClientId()
    const stolen = makeEntry(taken, 2, 'sale/x', 'sold', {})
    const fine = makeEntry(other, 1, 'sale/y', 'sold', {})
    const results = acked(
      await forward(hub, 1, [stolen, fine], { [taken]: 'till-thief', [other]: 'till-2' }),
    )
    expect(results.map((r) => r.status)).toEqual(['id_conflict', 'appended'])
    // Nothing recorded for the taken client: its owner's next clientSeq is still 2.
    const [next] = await pushAcked(owner, 2, [makeEntry(taken, 2, 'sale/o2', 'sold', {})])
    expect(next?.status).toBe('appended')
    // The hub's session is still open and forwards on.
    const [later] = acked(
      await forward(hub, 2, [makeEntry(other, 2, 'sale/z', 'sold', {})], { [other]: 'till-2' }),
    )
    expect(later?.status).toBe('appended')
    // The forwarded clientId is bound to its own subject, not the hub's.
    const direct = await edges.connect(relay.url, other, { sub: 'till-2' })
    const [dup] = await pushAcked(direct, 1, [fine])
    expect(dup?.status).toBe('duplicate')
  })

  it('closes a session that forwards without a forward grant', async () => {
    const relay = await edges.start(kind, { schema: null })
    const device = await edges.connect(relay.url, newClientId(), { sub: 'till-1' })
    const till = newClientId()
    const answer = await forward(device, 1, [makeEntry(till, 1, 'sale/s1', 'sold', {})], {
      [till]: 'till-9',
    })
    expect(Array.isArray(answer) ? 'acked' : (answer as { kind?: string }).kind).toBe('bad_message')
    expect(await readAll(relay.store)).toEqual([])
  })
})

async function readAll(store: LogStore): Promise<Entry[]> {
  const all: Entry[] = []
  for (let p = 0; p < store.partitions; p++) {
    all.push(...(await store.readPartition('acme', p, 0, 1_000)).entries)
  }
  return all
}
