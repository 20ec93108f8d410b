// Goal: finding C of the product simulation (issue 14) — a server log restored from a copy older
// than a till's first push forgets which subject the till's clientId is bound to; an impostor
// who learned the clientId from the old log binds it first. The till must not park for ever with
// its outbox (on 878ded0 it is refused `client_taken` at every hello and its sales never land):
// `client_taken` from a log other than the one it last saw moves its entries to a new clientId
// bound to its own subject, every sale once, none attributed to the impostor. Under the log it
// last saw, `client_taken` still parks (a clone or an impostor who got there first on the same
// log is not something a device may work around by itself).
// Method: the real client (fake-indexeddb, wire spy) and the real relay on SQLite and on
// PostgreSQL behind the test proxy; the impostor speaks the protocol by hand (`ws` + codec) with
// the till's clientId and another subject's token. The log is backed up before the till's first
// push and restored with the operator's `bump-generation`.
import 'fake-indexeddb/auto'
import { describe, expect, it } from 'vitest'
import { IDBFactory } from 'fake-indexeddb'
import { WebSocket } from 'ws'
import type { Entry } from '@ledgerline/core'
import { decodeMessage, encodeMessage, PROTOCOL_VERSION } from '@ledgerline/protocol'
import type { ClientMessage, RelayMessage } from '@ledgerline/protocol'
import { bumpGeneration } from '../test-support/edge-api.ts'
import { LOG_KINDS, TENANT, useEdgeServers } from '../test-support/edge-relay.ts'
import type { EdgeServer } from '../test-support/edge-relay.ts'
import { eventually, seededRandom, testSeed } from '../test-support/setup.ts'
import { createWireSpy } from '../test-support/wire-spy.ts'
import type { WireSpy } from '../test-support/wire-spy.ts'
import type { Client } from './index.ts'

/** Bound on each wait of the impostor's socket. */
const WAIT_MS = 10_000

const startEdgeServer = useEdgeServers()

describe.each(LOG_KINDS)('finding C: a clientId a restored log forgot (%s)', (kind) => {
  it('client_taken from a restored log moves the till to a new clientId: every sale once, its own', async () => {
    const server = await startEdgeServer(kind)
    await server.stop()
    const backup = await server.backup() // before the till's first push: nothing is bound
    await server.start()
    const idb = new IDBFactory()
    let till = open(server, idb, 'c-restored-1', createWireSpy())
    for (const sale of [1, 2]) await till.append('order/o1', 'order.line', { sale })
    expect(await till.synced()).toEqual({ _tag: 'synced' })
    const taken = clientIdOf(till)
    await server.stop()
    await till.append('order/o1', 'order.line', { sale: 3 }) // offline: in the outbox
    await till.close()

    expect(bumpGeneration(backup).status).toBe(0)
    await server.start(backup)
    // The impostor read `taken` from an entry id of the old log; the restored log never saw it.
    const results = await impostorPushes(server, taken, 2)
    expect(results).toEqual(['appended', 'appended'])

    const spy = createWireSpy()
    till = open(server, idb, 'c-restored-2', spy)
    expect(await till.synced({ timeoutMs: 20_000 })).toEqual({ _tag: 'synced' })
    const moved = clientIdOf(till)
    expect(moved).not.toBe(taken)
    expect(till.status().outboxEntries).toBe(0)
    // Every sale of the till once, under its new clientId, bound to its own subject.
    const ledger = await server.entries('order/o1')
    expect(ledger.map((e) => (e.data as { sale: number }).sale)).toEqual([1, 2, 3])
    expect(ledger.every((e) => e.clientId === moved)).toBe(true)
    expect(await server.relay.store.client(TENANT, moved)).toEqual({ high: 3, subject: 'till' })
    // The impostor's entries stay the impostor's: nothing of the till under the taken id.
    expect(await server.relay.store.client(TENANT, taken)).toEqual({
      high: 2,
      subject: 'intruder',
    })
    expect((await server.entries('order/x')).map((e) => e.id)).toEqual([`${taken}-1`, `${taken}-2`])
    // The app's id of sale 3 follows the move to the position that holds sale 3.
    const outcome = await till.outcome(`${taken}-3`)
    expect(outcome).toMatchObject({ _tag: 'appended', offset: ledger[2]?.offset })
    const snap = await till.load<{ lines: number }>('order/o1')
    expect(snap.confirmed).toEqual({ lines: 3 })
    expect(snap.pending).toEqual([])
    // One refusal, then the move: no reconnect storm.
    expect(spy.errorKinds().filter((k) => k === 'client_taken')).toHaveLength(1)
  }, 90_000)

  it('client_taken from the log the till last saw parks it with its outbox', async () => {
    const server = await startEdgeServer(kind)
    const idb = new IDBFactory()
    let till = open(server, idb, 'c-same-1', createWireSpy())
    expect(await till.synced()).toEqual({ _tag: 'synced' }) // welcomed: it knows this log
    const taken = clientIdOf(till)
    await till.close()
    // Someone who got the clientId (a clone of the database, say) binds it on the same log.
    expect(await impostorPushes(server, taken, 1)).toEqual(['appended'])

    const spy = createWireSpy()
    till = open(server, idb, 'c-same-2', spy)
    await till.append('order/o1', 'order.line', { sale: 1 })
    await eventually(() => till.status().lastError?.kind === 'client_taken', 10_000, 'taken')
    const hellos = spy.count('sent', 'hello')
    await new Promise((r) => setTimeout(r, 1_000))
    expect(spy.count('sent', 'hello')).toBe(hellos)
    expect(till.status()).toMatchObject({ clientId: taken, outboxEntries: 1 })
    expect(await server.entries('order/o1')).toEqual([])
  }, 60_000)
})

function clientIdOf(till: Client): string {
  const id = till.status().clientId
  if (id === null) throw new Error('the till has no clientId yet')
  return id
}

function open(server: EdgeServer, idb: IDBFactory, name: string, spy: WireSpy): Client {
  return server.open({ idb, WebSocket: spy.WebSocket, random: seededRandom(testSeed(name)) })
}

/**
 * Another subject of the tenant says `hello` with `clientId` and pushes clientSeq 1..count on
 * `order/x`; answers the ack's statuses.
 */
async function impostorPushes(
  server: EdgeServer,
  clientId: string,
  count: number,
): Promise<string[]> {
  const ws = new WebSocket(server.url, { perMessageDeflate: false })
  const received: RelayMessage[] = []
  let wake: (() => void) | undefined
  ws.on('message', (data: Buffer) => {
    received.push(decodeMessage(new Uint8Array(data)) as RelayMessage)
    wake?.()
  })
  const next = async (type: string): Promise<RelayMessage> => {
    const deadline = Date.now() + WAIT_MS
    for (;;) {
      const at = received.findIndex((m) => m.type === type || m.type === 'error')
      if (at >= 0) return received.splice(at, 1)[0] as RelayMessage
      if (Date.now() > deadline) throw new Error(`the impostor got no ${type}`)
      await new Promise<void>((resolve) => {
        wake = resolve
        setTimeout(resolve, 50)
      })
    }
  }
  const send = (m: ClientMessage) => ws.send(encodeMessage(m))
  try {
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve())
      ws.once('error', reject)
    })
    send({
      type: 'hello',
      protocol: PROTOCOL_VERSION,
      clientId,
      token: await server.token({ sub: 'intruder' }),
    })
    const welcome = await next('welcome')
    if (welcome.type !== 'welcome') throw new Error(`the impostor got ${JSON.stringify(welcome)}`)
    const now = Date.now()
    const entries: Entry[] = Array.from({ length: count }, (_, i) => ({
      id: `${clientId}-${i + 1}`,
      tenant: TENANT,
      entity: 'order/x',
      kind: 'order.line',
      data: { sale: `forged-${i + 1}` },
      intent: 'fact',
      clientId,
      clientSeq: i + 1,
      hlc: `${String(now).padStart(15, '0')}:00000:${clientId}`,
      occurredAt: now,
    }))
    send({ type: 'push', batch: 1, entries })
    const ack = await next('ack')
    if (ack.type !== 'ack') throw new Error(`the impostor's push got ${JSON.stringify(ack)}`)
    return ack.results.map((r) => r.status)
  } finally {
    ws.close()
  }
}
