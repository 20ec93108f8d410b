// Goal: guarantees 2, 3 and 4 across hard crashes of the relay process: every acked entry is in
// the log exactly once at the position its ack named, nothing acked is lost, versions and
// offsets stay gap-free, and a fact's correction is made once however often it is resent.
// Method: spawn the CLI (`--schema` with a correcting entity type) on a temp data directory;
// four clients keep an in-memory outbox and push batches with 4 in flight; SIGKILL the relay at
// seeded random moments (CRASH_KILLS times, LEDGERLINE_KILLS raises it in a deep tier); restart
// on the same directory, and each client resends its whole unacked outbox in order. At the end a
// last run drains every outbox, the relay stops with SIGTERM, and the log file is read directly.
// The seed is printed; LEDGERLINE_SEED replays a run.
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import WebSocket from 'ws'
import { afterAll, describe, expect, it } from 'vitest'
import { entryId } from '@ledgerline/core'
import type { Entry, StoredEntry } from '@ledgerline/core'
import { decodeMessage, encodeMessage, PROTOCOL_VERSION } from '@ledgerline/protocol'
import type { AckResult, RelayMessage } from '@ledgerline/protocol'
import { signToken } from './auth.ts'
import { createSqliteStore } from './sqlite-store.ts'

/** SIGKILLs in the quick tier; `LEDGERLINE_KILLS` sets another count (the deep tier). */
const CRASH_KILLS = 20
const KILLS = Number(process.env.LEDGERLINE_KILLS ?? CRASH_KILLS)
const SEED = Number(process.env.LEDGERLINE_SEED ?? Math.floor(Math.random() * 2 ** 31))
const CLIENTS = 4
const BATCH_MAX = 20
const IN_FLIGHT = 4
const RUN_MS_MAX = 300
const SECRET = 'crash-test-secret-crash-test-secret'
const CLI = resolve(dirname(fileURLToPath(import.meta.url)), '../dist/cli.js')

interface Client {
  readonly clientId: string
  seq: number
  /** Entries not yet acked, in clientSeq order. */
  outbox: Entry[]
}

interface Positions {
  version: number
  partition: number
  offset: number
  corrections: string[]
}

const dir = mkdtempSync(join(tmpdir(), 'll-crash-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe('relay crash test', () => {
  it(
    `keeps every acked entry exactly once across ${KILLS} SIGKILLs (seed ${SEED})`,
    async () => {
      // oxlint-disable-next-line no-console -- the seed must be visible to replay a failure
      console.log(`crash test: seed ${SEED}, ${KILLS} kills (LEDGERLINE_SEED=${SEED} replays)`)
      const random = mulberry32(SEED)
      writeSchemaModule(dir)
      const token = await signToken({
        secret: SECRET,
        tenant: 'acme',
        sub: 'crash',
        read: ['*'],
        write: ['*'],
      })
      const clients: Client[] = Array.from({ length: CLIENTS }, (_, i) => ({
        clientId:
          `${(i + 1).toString(16).padStart(2, '0')}${SEED.toString(16).padStart(30, '0')}`.slice(
            0,
            32,
          ),
        seq: 0,
        outbox: [],
      }))
      const acked = new Map<string, Positions>()
      const problems: string[] = []
      let killsDone = 0
      for (let cycle = 0; cycle < KILLS; cycle++) {
        const relay = await startRelay()
        const killAfterMs = Math.floor(random() * RUN_MS_MAX)
        // Some kills land while clients are still connecting and resending.
        const sessions = clients.map((c) =>
          runClient(relay.url, token, c, acked, problems, random, { generate: true }),
        )
        await sleep(killAfterMs)
        relay.child.kill('SIGKILL')
        await relay.exited
        killsDone++
        await Promise.all(sessions.map((s) => s.done))
      }
      expect(killsDone).toBe(KILLS)
      // The last run: drain every outbox, then stop gracefully.
      const relay = await startRelay()
      const sessions = clients.map((c) =>
        runClient(relay.url, token, c, acked, problems, random, { generate: false }),
      )
      await waitUntil(() => clients.every((c) => c.outbox.length === 0), 20_000)
      for (const s of sessions) s.close()
      await Promise.all(sessions.map((s) => s.done))
      relay.child.kill('SIGTERM')
      expect(await relay.exited).toBe(0)
      expect(problems).toEqual([])

      const store = await createSqliteStore({ file: join(dir, 'data', 'log.sqlite') })
      try {
        const all: StoredEntry[] = []
        for (let p = 0; p < store.partitions; p++) {
          let after = 0
          for (let pages = 0; pages < 100_000; pages++) {
            const page = await store.readPartition('acme', p, after, 1_000)
            all.push(...page.entries)
            after = page.throughOffset
            if (page.entries.length < 1_000) break
          }
        }
        const byId = new Map<string, StoredEntry[]>()
        for (const e of all) byId.set(e.id, [...(byId.get(e.id) ?? []), e])
        // Exactly once: no id twice, every acked entry present at the acked position.
        expect([...byId.values()].filter((list) => list.length > 1)).toEqual([])
        for (const [id, pos] of acked) {
          const stored = byId.get(id)?.[0]
          expect(stored, `acked ${id} missing`).toBeDefined()
          expect({
            version: stored?.version,
            partition: stored?.partition,
            offset: stored?.offset,
          }).toEqual({ version: pos.version, partition: pos.partition, offset: pos.offset })
          for (const c of pos.corrections) expect(byId.has(c), `correction ${c}`).toBe(true)
        }
        // Every client entry ever made was acked in the end (the outboxes drained).
        const made = clients.reduce((n, c) => n + c.seq, 0)
        const fromClients = all.filter((e) => e.clientId !== 'server')
        expect(fromClients).toHaveLength(made)
        expect(acked.size).toBe(made)
        // Dense versions per entity, gap-free offsets per partition.
        const versions = new Map<string, number[]>()
        const offsets = new Map<number, number[]>()
        for (const e of all) {
          versions.set(e.entity, [...(versions.get(e.entity) ?? []), e.version])
          offsets.set(e.partition, [...(offsets.get(e.partition) ?? []), e.offset])
        }
        for (const list of versions.values()) {
          expect([...list].sort((a, b) => a - b)).toEqual(list.map((_, i) => i + 1))
        }
        const heads = await store.partitionHeads()
        for (const [p, list] of offsets) {
          expect(list).toEqual(list.map((_, i) => i + 1))
          expect(heads[p]).toBe(list.length)
        }
        // One correction per offending fact, however often it was resent.
        const corrections = all.filter((e) => e.corrects !== undefined)
        const perFact = new Map<string, number>()
        for (const c of corrections)
          perFact.set(c.corrects as string, (perFact.get(c.corrects as string) ?? 0) + 1)
        expect([...perFact.values()].every((n) => n === 1)).toBe(true)
        // oxlint-disable-next-line no-console -- the measured counts belong in the test output
        console.log(
          `crash test: ${KILLS} kills, ${made} entries acked, ${corrections.length} corrections, ` +
            `${all.length} entries in the log`,
        )
      } finally {
        await store.close()
      }
    },
    Math.max(60_000, KILLS * 5_000),
  )
})

// ---------------------------------------------------------------------------------------------

async function startRelay(): Promise<{
  child: ChildProcess
  url: string
  exited: Promise<number | null>
}> {
  const child = spawn(
    process.execPath,
    [CLI, '--port', '0', '--data', './data', '--schema', './schema.mjs', '--log-level', 'error'],
    {
      cwd: dir,
      env: { ...process.env, LEDGERLINE_SECRET: SECRET },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  )
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => resolve(code)),
  )
  let stderr = ''
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  const url = await new Promise<string>((resolve, reject) => {
    let out = ''
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`relay did not start in time: ${out} ${stderr}`))
    }, 15_000)
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString()
      const m = /ledgerline relay listening on http:\/\/127\.0\.0\.1:(\d+) \((ws:\/\/[^)]+)\)/.exec(
        out,
      )
      if (m !== null) {
        clearTimeout(timer)
        resolve(m[2] as string)
      }
    })
    void exited.then((code) => {
      clearTimeout(timer)
      reject(new Error(`relay exited with ${code} before listening: ${stderr}`))
    })
  })
  return { child, url, exited }
}

/**
 * One connection of a client: hello, resend the outbox in order, then (if `generate`) make new
 * entries, keeping IN_FLIGHT batches unacked. Ends when the socket closes.
 */
function runClient(
  url: string,
  token: string,
  client: Client,
  acked: Map<string, Positions>,
  problems: string[],
  random: () => number,
  options: { generate: boolean },
): { done: Promise<void>; close: () => void } {
  const ws = new WebSocket(url, { perMessageDeflate: false })
  const inFlight = new Map<number, Entry[]>()
  let batch = 0
  let sentThrough = 0 // clientSeq sent on this connection
  const send = () => {
    while (inFlight.size < IN_FLIGHT && ws.readyState === ws.OPEN) {
      let next = client.outbox.filter((e) => e.clientSeq > sentThrough).slice(0, BATCH_MAX)
      if (next.length === 0 && options.generate) {
        const n = 1 + Math.floor(random() * BATCH_MAX)
        for (let i = 0; i < n; i++) client.outbox.push(makeEntry(client, random))
        next = client.outbox.filter((e) => e.clientSeq > sentThrough).slice(0, BATCH_MAX)
      }
      if (next.length === 0) return
      batch++
      inFlight.set(batch, next)
      sentThrough = (next.at(-1) as Entry).clientSeq
      ws.send(encodeMessage({ type: 'push', batch, entries: next }))
    }
  }
  ws.on('open', () => {
    ws.send(
      encodeMessage({
        type: 'hello',
        protocol: PROTOCOL_VERSION,
        token,
        clientId: client.clientId,
      }),
    )
  })
  ws.on('message', (data: Buffer) => {
    const m = decodeMessage(new Uint8Array(data)) as RelayMessage
    if (m.type === 'welcome') {
      send()
    } else if (m.type === 'ack') {
      inFlight.delete(m.batch)
      for (const r of m.results) onResult(r)
      send()
    } else if (m.type === 'error' && m.kind !== 'shutting_down') {
      problems.push(`error ${m.kind}: ${m.message}`)
    }
  })
  const onResult = (r: AckResult) => {
    if (r.status === 'refused' || r.status === 'deferred') {
      problems.push(`${r.status} ${r.id}: ${r.code} ${r.reason}`)
      return
    }
    if (r.status === 'id_conflict') {
      problems.push(`id_conflict ${r.id}: ${r.reason}`)
      return
    }
    if (r.status === 'stored') {
      // Only a store hub answers `stored`; this relay is head office.
      problems.push(`stored ${r.id} from head office`)
      return
    }
    const positions = {
      version: r.version,
      partition: r.partition,
      offset: r.offset,
      corrections: r.corrections.map((c) => c.id),
    }
    const before = acked.get(r.id)
    if (before !== undefined && JSON.stringify(before) !== JSON.stringify(positions)) {
      problems.push(`${r.id} acked at ${JSON.stringify(before)} then ${JSON.stringify(positions)}`)
    }
    acked.set(r.id, positions)
    client.outbox = client.outbox.filter((e) => e.id !== r.id)
  }
  ws.on('error', () => {})
  const done = new Promise<void>((resolve) => ws.once('close', () => resolve()))
  return { done, close: () => ws.close() }
}

function makeEntry(client: Client, random: () => number): Entry {
  client.seq++
  const stock = random() < 0.6
  const entity = stock ? `stock/s${Math.floor(random() * 4)}` : `order/o${Math.floor(random() * 8)}`
  return {
    id: entryId(client.clientId, client.seq),
    tenant: 'acme',
    entity,
    kind: stock ? 'stock.moved' : 'order.line',
    data: stock ? { qty: Math.floor(random() * 7) - 3 } : { n: client.seq },
    intent: 'fact',
    clientId: client.clientId,
    clientSeq: client.seq,
    hlc: `${String(Date.now()).padStart(15, '0')}:00000:${client.clientId}`,
    occurredAt: Date.now(),
  }
}

/** The `--schema` module: stock that is corrected when oversold, and plain orders. */
function writeSchemaModule(at: string): void {
  const core = pathToFileURL(createRequire(import.meta.url).resolve('@ledgerline/core')).href
  writeFileSync(
    join(at, 'schema.mjs'),
    `import { defineEntity, defineSchema } from ${JSON.stringify(core)}
export default defineSchema(
  defineEntity({
    type: 'stock',
    initial: { onHand: 0 },
    reduce: (s, e) => e.kind === 'stock.moved' ? { onHand: s.onHand + e.data.qty }
      : e.kind === 'stock.oversold' ? { onHand: s.onHand + e.data.short } : s,
    invariants: { nonNegative: (s) => s.onHand >= 0 || 'stock below zero' },
    correct: (s, _b, e) => [{ kind: 'stock.oversold', data: { short: -s.onHand, sale: e.id } }],
  }),
  defineEntity({ type: 'order', initial: { lines: 0 }, reduce: (s) => ({ lines: s.lines + 1 }) }),
)
`,
  )
}

function mulberry32(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

async function waitUntil(condition: () => boolean, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > until) throw new Error('condition not met in time')
    await sleep(20)
  }
}
