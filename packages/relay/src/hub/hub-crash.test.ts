// Goal: a store hub SIGKILLed mid-forward and restarted on the same data directory forwards
// everything exactly once (issue 15, "the hub SIGKILLed mid-forward"). Method: head office runs
// in this process; the hub is the CLI as its own process (`--upstream`, `--upstream-token-file`).
// Two wire registers push REGISTER_ENTRIES entries each to the hub in batches; once head office
// holds some of them but not all, the hub is SIGKILLed. It is started again on the same data
// directory; the registers resend what the hub had not answered (as a client would), and head
// office must end up holding every entry exactly once, with the content that was pushed, and
// every entry the hub answered `stored` before the kill among them.
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import type { Entry } from '@ledgerline/core'
import { PUSH_IN_FLIGHT_MAX } from '@ledgerline/protocol'
import type { AckMessage } from '@ledgerline/protocol'
import { makeEntry, SECRET, startCliRelay, TENANT, token } from '../edges.test-helper.ts'
import type { CliRelay } from '../edges.test-helper.ts'
import { createRelay } from '../index.ts'
import type { LogStore } from '../index.ts'
import { openClient, waitFor } from '../wire-client.test-helper.ts'
import type { WireClient } from '../wire-client.test-helper.ts'

const REGISTER_ENTRIES = 1_500
const BATCH = 100
const DRAIN_WAIT_MS = 60_000

const undo: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const u of undo.splice(0).reverse()) await u()
})

async function countAt(store: LogStore): Promise<Entry[]> {
  const all: Entry[] = []
  for (let p = 0; p < store.partitions; p++) {
    all.push(...(await store.readPartition(TENANT, p, 0, 100_000)).entries)
  }
  return all
}

/**
 * Pushes entries in batches as a client's outbox does, at most `PUSH_IN_FLIGHT_MAX` unanswered
 * (more is refused `rate_limited` by any relay whose appends are not answered at once), without
 * waiting for the last acks; stops when the socket closes.
 */
function pushAll(client: WireClient, entries: readonly Entry[]): void {
  const batches: Entry[][] = []
  for (let i = 0; i < entries.length; i += BATCH) batches.push(entries.slice(i, i + BATCH))
  let sent = 0
  const answered = () =>
    client.received.filter((m) => m.type === 'ack' && (m as AckMessage).done !== false).length
  const pump = () => {
    while (sent < batches.length && sent - answered() < PUSH_IN_FLIGHT_MAX) {
      client.send({ type: 'push', batch: sent + 1, entries: batches[sent] })
      sent++
    }
    if (sent < batches.length && client.ws.readyState === client.ws.OPEN) setTimeout(pump, 5)
  }
  pump()
}

function storedIds(client: WireClient): Set<string> {
  const ids = new Set<string>()
  for (const m of client.received) {
    if (m.type !== 'ack') continue
    for (const r of (m as AckMessage).results) if (r.status !== 'refused') ids.add(r.id)
  }
  return ids
}

describe('store hub crash', () => {
  it('forwards everything exactly once after a SIGKILL mid-forward', async () => {
    const hqDir = mkdtempSync(join(tmpdir(), 'll-hq-'))
    const hubDir = mkdtempSync(join(tmpdir(), 'll-hub-'))
    const hq = await createRelay({
      port: 0,
      dataDir: hqDir,
      auth: { secret: SECRET },
      logLevel: 'silent',
    })
    undo.push(async () => {
      await hq.close()
      rmSync(hqDir, { recursive: true, force: true })
      rmSync(hubDir, { recursive: true, force: true })
    })
    const tokenFile = join(hubDir, '..', `hub-token-${randomBytes(4).toString('hex')}`)
    writeFileSync(
      tokenFile,
      await token({ sub: 'hub-7', read: ['*'], write: [], forward: ['sale/*'] }),
    )
    undo.push(() => rmSync(tokenFile, { force: true }))
    const args = ['--upstream', hq.url, '--upstream-token-file', tokenFile]
    let hub: CliRelay = await startCliRelay({ dataDir: hubDir, args })
    undo.push(() => hub.stop('SIGKILL'))

    const registers = [0, 1].map(() => randomBytes(16).toString('hex'))
    const entries = registers.map((clientId, r) =>
      Array.from({ length: REGISTER_ENTRIES }, (_, i) =>
        makeEntry(clientId, i + 1, `sale/r${r}-${i % 50}`, 'sold', { n: i, r }),
      ),
    )
    const connectAll = async (url: string) => {
      const clients: WireClient[] = []
      for (const [r, clientId] of registers.entries()) {
        // The hub refuses hellos until it reached head office: retry for a while.
        for (let attempt = 0; ; attempt++) {
          const c = await openClient(url, { clientId })
          const answer = await c.hello(await token({ sub: `till-${r}` }))
          if (answer.type === 'welcome') {
            clients.push(c)
            undo.push(() => c.close())
            break
          }
          c.close()
          if (attempt > 100) throw new Error(`hub never welcomed: ${JSON.stringify(answer)}`)
          await new Promise((resolve) => setTimeout(resolve, 100))
        }
      }
      return clients
    }
    const first = await connectAll(hub.url)
    for (const [r, c] of first.entries()) pushAll(c, entries[r] as Entry[])
    const total = REGISTER_ENTRIES * registers.length
    // Mid-forward: head office holds some, not all.
    let atHq = 0
    const until = Date.now() + DRAIN_WAIT_MS
    while (Date.now() < until) {
      atHq = (await countAt(hq.store)).length
      if (atHq > 0) break
      await new Promise((resolve) => setTimeout(resolve, 5))
    }
    await hub.stop('SIGKILL')
    const storedBeforeKill = first.map(storedIds)
    process.stdout.write(
      `[hub-crash] killed with ${atHq} of ${total} at head office; ${storedBeforeKill.reduce((n, s) => n + s.size, 0)} answered by the hub\n`,
    )
    expect(atHq).toBeLessThan(total)

    hub = await startCliRelay({ dataDir: hubDir, args })
    const second = await connectAll(hub.url)
    // Registers resend what the hub had not answered (an outbox keeps it until head office's
    // result): everything, in the same clientSeq order; answered ones come back as known.
    for (const [r, c] of second.entries()) pushAll(c, entries[r] as Entry[])
    await waitFor(() => second.every((c) => storedIds(c).size === REGISTER_ENTRIES), DRAIN_WAIT_MS)
    let held: Entry[] = []
    const drainedBy = Date.now() + DRAIN_WAIT_MS
    while (Date.now() < drainedBy) {
      held = await countAt(hq.store)
      if (held.length >= total) break
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    const ids = held.map((e) => e.id)
    expect(new Set(ids).size).toBe(ids.length)
    expect(ids.length).toBe(total)
    const byId = new Map(held.map((e) => [e.id, e]))
    for (const list of entries) {
      for (const e of list) expect(byId.get(e.id)?.data).toEqual(e.data)
    }
    for (const s of storedBeforeKill) for (const id of s) expect(byId.has(id)).toBe(true)
  })
})
