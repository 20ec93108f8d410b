// Goal: the session's half of the log's newer answers (session.ts invariants 5, 8): `welcome`
// carries the token subject, the log's identity and the relay's limits; a hello with a clientId
// the log binds to another subject is refused `client_taken` (4409); a push the log refuses
// because the clientId is taken closes the session the same way, with nothing recorded; an ack
// too big for one frame arrives in parts, with references to readable corrections only.
// Method: a real relay on a real SQLite log (which binds subjects and keeps its identity); for
// the ack test the log is wrapped to hand back 16 correction references per result, half of
// them on entities the pusher may not read; wire clients.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { ACK_CORRECTIONS_MAX, FRAME_BYTES_MAX } from '@ledgerline/protocol'
import type { AckMessage, AckResult, WelcomeMessage } from '@ledgerline/protocol'
import { makeEntry, pushBatch, SECRET, TENANT, token } from './edges.test-helper.ts'
import { createRelay, createSqliteStore } from './index.ts'
import type { LogStore } from './index.ts'
import { openClient } from './wire-client.test-helper.ts'

const TILL = '7e'.repeat(16)
const cleanups: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

describe('the session and the log of the edges design', () => {
  it('welcomes with the subject, the log identity and the relay limits', async () => {
    const { url, log } = await start({ limits: { pushEntriesMax: 10 } })
    const till = await openClient(url, { clientId: TILL })
    cleanups.push(() => till.close())
    const welcome = (await till.hello(await token({ sub: 'till-1' }))) as WelcomeMessage
    expect(welcome.type).toBe('welcome')
    expect(welcome.subject).toBe('till-1')
    expect(welcome.log).toEqual(await log.identity())
    expect(welcome.limits).toMatchObject({ pushEntriesMax: 10, pushBytesMax: FRAME_BYTES_MAX })
  })

  it("refuses a hello with another subject's clientId (client_taken, 4409); the owner is welcome", async () => {
    const { url, log } = await start()
    const till = await openClient(url, { clientId: TILL })
    cleanups.push(() => till.close())
    await till.hello(await token({ sub: 'till-1' }))
    const first = await pushBatch(till, 1, [makeEntry(TILL, 1, 'order/o1', 'order.line', {})])
    expect(first._tag).toBe('acked')

    const impostor = await openClient(url, { clientId: TILL })
    cleanups.push(() => impostor.close())
    const answer = await impostor.hello(await token({ sub: 'intruder' }))
    expect(answer).toMatchObject({ type: 'error', kind: 'client_taken' })
    expect((await impostor.closed).code).toBe(4409)
    expect(await log.client(TENANT, TILL)).toEqual({ high: 1, subject: 'till-1' })

    const again = await openClient(url, { clientId: TILL })
    cleanups.push(() => again.close())
    expect((await again.hello(await token({ sub: 'till-1' }))).type).toBe('welcome')
  })

  it('closes a session whose push the log refuses as client_taken, recording nothing', async () => {
    const { url, log } = await start()
    const till = await openClient(url, { clientId: TILL })
    const impostor = await openClient(url, { clientId: TILL })
    cleanups.push(
      () => till.close(),
      () => impostor.close(),
    )
    await till.hello(await token({ sub: 'till-1' }))
    await impostor.hello(await token({ sub: 'intruder' })) // the clientId is unbound yet
    await pushBatch(till, 1, [makeEntry(TILL, 1, 'order/o1', 'order.line', { n: 1 })])
    const raced = await pushBatch(impostor, 1, [makeEntry(TILL, 2, 'order/o1', 'order.line', {})])
    expect(raced._tag === 'error' && raced.error.kind).toBe('client_taken')
    expect((await impostor.closed).code).toBe(4409)
    expect(await log.client(TENANT, TILL)).toEqual({ high: 1, subject: 'till-1' })
  })

  it('sends an ack over one frame in parts, naming only corrections the pusher may read', async () => {
    const { url } = await start({ refs: true })
    const till = await openClient(url, { clientId: TILL })
    cleanups.push(() => till.close())
    await till.hello(await token({ read: ['order/*', 'stock/readable-*'] }))
    const entries = Array.from({ length: 500 }, (_, i) =>
      makeEntry(TILL, i + 1, `order/o${i}`, 'order.line', { i }),
    )
    const pushed = await pushBatch(till, 1, entries)
    expect(pushed._tag).toBe('acked')
    const acks = till.received.filter((m): m is AckMessage => m.type === 'ack')
    expect(acks.length).toBeGreaterThan(1)
    expect(acks.map((a) => a.done)).toEqual(acks.map((_, i) => i === acks.length - 1))
    const results = pushed._tag === 'acked' ? pushed.results : []
    expect(results.map((r) => r.id)).toEqual(entries.map((e) => e.id))
    for (const r of results) {
      const refs = r.status === 'appended' ? r.corrections : []
      expect(refs).toHaveLength(ACK_CORRECTIONS_MAX / 2)
      expect(refs.every((c) => c.entity.startsWith('stock/readable-'))).toBe(true)
    }
  })
})

/**
 * A relay on a SQLite log that also answers as the edges design's log does: `client()` with the
 * bound subject, `identity()`, subjects bound on append and `client_taken` past them; with
 * `refs`, every appended result names 16 corrections, half on entities the test cannot read.
 */
async function start(options: { limits?: { pushEntriesMax: number }; refs?: boolean } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'll-session-log-'))
  const log = await createSqliteStore({ file: join(dir, 'log.sqlite') })
  // Only the ack test changes what the log answers: every appended result names 16 corrections.
  const store =
    options.refs === true
      ? (new Proxy(log, {
          get(target, key) {
            if (key === 'append') {
              return async (...args: Parameters<LogStore['append']>) =>
                (await target.append(...args)).map((r) =>
                  r.status === 'appended' ? withRefs(r) : r,
                )
            }
            const value = Reflect.get(target, key, target) as unknown
            return typeof value === 'function' ? value.bind(target) : value
          },
        }) as LogStore)
      : log
  const relay = await createRelay({
    port: 0,
    store,
    auth: { secret: SECRET },
    logLevel: 'silent',
    limits: options.limits,
  })
  cleanups.push(async () => {
    await relay.close()
    await log.close()
    rmSync(dir, { recursive: true, force: true })
  })
  return { url: relay.url, log }
}

function withRefs(result: AckResult): AckResult {
  if (result.status !== 'appended') return result
  const corrections = Array.from({ length: ACK_CORRECTIONS_MAX }, (_, i) => ({
    id: `${result.id}~rule~${i}`,
    entity: `stock/${i % 2 === 0 ? 'readable' : 'hidden'}-${'x'.repeat(220)}-${i}`,
    kind: 'stock.oversold',
    version: i + 1,
    partition: 1,
    offset: 1_000 + i,
  }))
  return { ...result, corrections }
}
