// Goal: guarantee 10 under random hostile input: no frame, however malformed, crashes the relay,
// leaves an unhandled rejection, or affects another connection; each bad input closes only its
// own socket, with a documented close code; memory stays bounded. Method: an in-process relay
// (port 0) on SQLite and on PostgreSQL, and a bystander client that stays connected; FUZZ_CASES seeded cases, each on its own
// socket (before or after hello): random bytes, truncated MessagePack, valid messages with one
// field replaced by a hostile value (huge numbers, NaN, deep nesting, `__proto__` and
// `constructor` keys, wrong types), unknown types, text frames, oversized frames, fragmented
// frames with garbage continuations and tiny-fragment floods. After each case the socket must be
// closed with a code in CLOSE_CODES (or `ws`'s own 1002/1007/1009) or still answer a ping; the
// bystander must answer pings throughout and get an ack at the end. The seed is printed;
// LEDGERLINE_SEED replays, LEDGERLINE_FUZZ_CASES raises the count (deep tier).
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { encode } from '@msgpack/msgpack'
import WebSocket from 'ws'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CLOSE_CODES, FRAME_BYTES_MAX, PROTOCOL_VERSION } from '@ledgerline/protocol'
import type { AckMessage, PongMessage } from '@ledgerline/protocol'
import { createPrng } from '@ledgerline/testkit'
import type { Prng } from '@ledgerline/testkit'
import { signToken } from './auth.ts'
import { LOG_KINDS, startEdgeRelay, stopPostgres } from './edges.test-helper.ts'
import type { EdgeRelay } from './edges.test-helper.ts'
import { openClient } from './wire-client.test-helper.ts'
import type { WireClient } from './wire-client.test-helper.ts'

/** Fuzz cases in the quick tier; `LEDGERLINE_FUZZ_CASES` sets another count. */
const FUZZ_CASES_QUICK = 160
const FUZZ_CASES = Number(process.env.LEDGERLINE_FUZZ_CASES ?? FUZZ_CASES_QUICK)
const SEED = Number(process.env.LEDGERLINE_SEED ?? 20_261_127)
/** Test time allowed per case (the deep tier scales the test's timeout with the count). */
const CASE_BUDGET_MS = 150
/** Wait for a socket's fate after a bad frame. */
const CASE_WAIT_MS = 3_000
/** Heap growth allowed over the whole run, after a forced GC. */
const HEAP_GROWTH_BYTES_MAX = 48 * 1024 * 1024
const SECRET = 'fuzz-secret-fuzz-secret-fuzz-secret'
/**
 * Codes `ws` itself closes with: protocol error, invalid UTF-8, policy (1008: too many fragments
 * or buffered chunks, ws/lib/receiver.js; not yet listed in protocol's CLOSE_CODES), too big.
 */
const WS_CLOSE_CODES = [1002, 1007, 1008, 1009]
const ALLOWED_CODES = new Set<number>([...Object.values(CLOSE_CODES), ...WS_CLOSE_CODES])

let relay: EdgeRelay
let bystander: WireClient
let token: string
const unhandled: unknown[] = []
const onUnhandled = (reason: unknown) => unhandled.push(reason)

describe.each(LOG_KINDS)('on %s', (kind) => {
  beforeAll(async () => {
    process.on('unhandledRejection', onUnhandled)
    relay = await startEdgeRelay(kind, {
      schema: null,
      secret: SECRET,
      // High rate limits: a fuzz case must be judged on its content, not on the flood limit.
      limits: { rateMessagesPerS: 100_000, rateMessagesBurst: 100_000 },
    })
    token = await signToken({
      secret: SECRET,
      tenant: 'acme',
      sub: 'fuzz',
      read: ['*'],
      write: ['*'],
    })
    bystander = await openClient(relay.url)
    const welcome = await bystander.hello(token)
    if (welcome.type !== 'welcome') throw new Error(`bystander not welcomed: ${welcome.type}`)
  })

  afterAll(async () => {
    process.off('unhandledRejection', onUnhandled)
    bystander?.close()
    await relay?.close()
  })

  describe(`frame fuzzer (seed ${SEED}, ${FUZZ_CASES} cases)`, () => {
    it(
      'closes only the offending socket, with a documented code, and keeps serving',
      async () => {
        // oxlint-disable-next-line no-console -- the seed must be visible to replay a failure
        console.log(`fuzz: seed ${SEED}, ${FUZZ_CASES} cases (LEDGERLINE_SEED=${SEED} replays)`)
        const rng = createPrng(SEED)
        const heapBefore = heapUsedAfterGc()
        const codes = new Map<number, number>()
        let stillOpen = 0
        const badCloses: string[] = []
        let framesSent = 0
        for (let i = 0; i < FUZZ_CASES; i++) {
          const kind = rng.pick(CASE_KINDS)
          const afterHello = rng.chance(0.6)
          const c = await openClient(relay.url)
          if (afterHello) await c.hello(token)
          const where = `seed ${SEED} case ${i} (${kind}, ${afterHello ? 'after' : 'before'} hello)`
          framesSent += await sendCase(kind, c, rng)
          const fate = await fateOf(c)
          if (fate === 'open') {
            stillOpen++
            c.close()
          } else {
            if (!ALLOWED_CODES.has(fate)) badCloses.push(`${where}: closed with ${fate}`)
            codes.set(fate, (codes.get(fate) ?? 0) + 1)
          }
          if (i % 20 === 19) await bystanderServed(where)
        }
        expect(badCloses).toEqual([])
        await bystanderServed('end')
        const entry = bystander.entry('note/fuzz', 'note.added', { ok: true })
        bystander.send({ type: 'push', batch: 1, entries: [entry] })
        const ack = await bystander.next<AckMessage>((m) => m.type === 'ack')
        expect(ack.results[0]?.status).toBe('appended')
        expect(unhandled.map((u) => `seed ${SEED}: unhandled ${String(u)}`)).toEqual([])
        const growth = heapUsedAfterGc() - heapBefore
        // oxlint-disable-next-line no-console -- the figures go into the README's "How we test"
        console.log(
          `fuzz: ${FUZZ_CASES} cases, ${framesSent} frames, closes by code ${JSON.stringify(Object.fromEntries(codes))}, ` +
            `${stillOpen} valid-after-mutation, heap growth ${(growth / 1024 / 1024).toFixed(1)} MB`,
        )
        expect(growth).toBeLessThan(HEAP_GROWTH_BYTES_MAX)
      },
      30_000 + FUZZ_CASES * CASE_BUDGET_MS,
    )
  })
})

afterAll(() => stopPostgres())

const CASE_KINDS = [
  'random-bytes',
  'truncated',
  'mutated-field',
  'deep-nesting',
  'proto-keys',
  'unknown-type',
  'not-a-map',
  'text-frame',
  'oversized',
  'fragmented-garbage',
  'fragment-flood',
] as const
type CaseKind = (typeof CASE_KINDS)[number]

/** Sends one hostile case; returns the frames (or fragments) sent. */
async function sendCase(kind: CaseKind, c: WireClient, rng: Prng): Promise<number> {
  switch (kind) {
    case 'random-bytes': {
      const bytes = new Uint8Array(rng.int(0, 256))
      rng.fill(bytes)
      c.sendRaw(bytes)
      return 1
    }
    case 'truncated': {
      const bytes = encode(validMessage(c, rng))
      c.sendRaw(bytes.subarray(0, rng.int(0, Math.max(0, bytes.length - 1))))
      return 1
    }
    case 'mutated-field': {
      const m = validMessage(c, rng) as Record<string, unknown>
      const target =
        rng.chance(0.5) && Array.isArray(m.entries) ? (m.entries[0] as Record<string, unknown>) : m
      const keys = Object.keys(target)
      target[rng.pick(keys)] = hostileValue(rng)
      c.sendRaw(encode(m))
      return 1
    }
    case 'deep-nesting': {
      let v: unknown = 1
      const depth = rng.pick([41, 100, 1_000, 10_000])
      for (let d = 0; d < depth; d++) v = rng.chance(0.5) ? [v] : { a: v }
      const m = validMessage(c, rng) as Record<string, unknown>
      m[rng.pick(['entries', 'scope', 'cursors', 'nested'])] = v
      c.sendRaw(encodeDeep(v, m))
      return 1
    }
    case 'proto-keys': {
      const m = validMessage(c, rng) as Record<string, unknown>
      const key = rng.pick(['__proto__', 'constructor', 'prototype'])
      const poison = JSON.parse(`{"${key}": {"polluted": true, "type": "ping"}}`) as unknown
      if (Array.isArray(m.entries) && rng.chance(0.5)) {
        ;(m.entries[0] as Record<string, unknown>).data = poison
      } else if (rng.chance(0.5)) {
        m.cursors = poison
      } else {
        Object.assign(m, poison)
      }
      c.sendRaw(encode(m))
      return 1
    }
    case 'unknown-type': {
      const m = validMessage(c, rng) as Record<string, unknown>
      m.type = rng.pick(['welcome', 'ack', 'entries', 'error', 'teleport', '', 7, null])
      c.sendRaw(encode(m))
      return 1
    }
    case 'not-a-map':
      c.sendRaw(encode(rng.pick<unknown>([42, 'push', [1, 2, 3], null, true, new Uint8Array(4)])))
      return 1
    case 'text-frame':
      c.sendRaw(rng.pick(['{"type":"ping","t":1}', 'hello', '\u0000', '']))
      return 1
    case 'oversized':
      c.sendRaw(new Uint8Array(FRAME_BYTES_MAX + rng.int(1, 1024)))
      return 1
    case 'fragmented-garbage': {
      // A valid frame's first half, then a continuation of random bytes.
      const bytes = encode(validMessage(c, rng))
      const cut = rng.int(1, Math.max(1, bytes.length - 1))
      const tail = new Uint8Array(rng.int(1, 64))
      rng.fill(tail)
      await sendFragments(c.ws, [bytes.subarray(0, cut), tail])
      return 2
    }
    case 'fragment-flood': {
      // Many tiny fragments of one message (the ws fragment-flood advisory).
      const parts = rng.pick([100, 1_000, 20_000])
      const chunk = new Uint8Array(1)
      await sendFragments(
        c.ws,
        Array.from({ length: parts }, () => chunk),
      )
      return parts
    }
  }
}

function validMessage(c: WireClient, rng: Prng): unknown {
  switch (rng.int(0, 4)) {
    case 0:
      return { type: 'hello', protocol: PROTOCOL_VERSION, token, clientId: c.clientId }
    case 1:
      return { type: 'subscribe', sub: 1, scope: ['*'], cursors: {}, credit: 1 }
    case 2:
      return { type: 'credit', sub: 1, pages: 1 }
    case 3:
      return { type: 'ping', t: rng.int(0, 1000) }
    default:
      return {
        type: 'push',
        batch: rng.int(1, 100),
        entries: [c.entry('stock/fuzz', 'stock.moved', { qty: rng.int(-5, 5) })],
      }
  }
}

function hostileValue(rng: Prng): unknown {
  return rng.pick<() => unknown>([
    () => 2 ** 64,
    () => -(2 ** 63),
    () => Number.MAX_SAFE_INTEGER + 2,
    () => Number.NaN,
    () => Number.POSITIVE_INFINITY,
    () => -1,
    () => 0.5,
    () => null,
    () => true,
    () => 'x'.repeat(rng.int(0, 100_000)),
    () => [],
    () => ({}),
    () => new Uint8Array(rng.int(0, 70_000)),
    () => Array.from({ length: rng.int(0, 5_000) }, () => 1),
    () => JSON.parse('{"__proto__": {"admin": true}}') as unknown,
  ])()
}

/** MessagePack of `m`; a nesting the encoder refuses (too deep) is hand-encoded. */
function encodeDeep(v: unknown, m: unknown): Uint8Array {
  try {
    return encode(m)
  } catch {
    // fixarray of one element, repeated, then 1: a valid but very deep MessagePack value.
    let depth = 0
    for (let x = v; Array.isArray(x) || (typeof x === 'object' && x !== null); depth++) {
      x = Array.isArray(x) ? x[0] : (x as { a: unknown }).a
    }
    const bytes = new Uint8Array(depth + 1)
    bytes.fill(0x91, 0, depth)
    bytes[depth] = 0x01
    return bytes
  }
}

async function sendFragments(ws: WebSocket, parts: readonly Uint8Array[]): Promise<void> {
  for (let i = 0; i < parts.length; i++) {
    if (ws.readyState !== WebSocket.OPEN) return
    ws.send(parts[i] as Uint8Array, { binary: true, fin: i === parts.length - 1 })
    // Let the socket drain now and then, so a flood is not just buffered on our side.
    if (i % 512 === 511) await new Promise((resolve) => setImmediate(resolve))
  }
}

/** 'open' if the socket still answers a ping, else its close code. */
async function fateOf(c: WireClient): Promise<number | 'open'> {
  const closed = c.closed.then((x) => x.code)
  const timeout = new Promise<'timeout'>((resolve) =>
    setTimeout(() => resolve('timeout'), CASE_WAIT_MS),
  )
  const first = await Promise.race([
    closed,
    new Promise<'idle'>((r) => setTimeout(() => r('idle'), 50)),
  ])
  if (first !== 'idle') return first
  if (c.ws.readyState === WebSocket.OPEN) {
    try {
      c.send({ type: 'ping', t: 424242 })
    } catch {
      // Closing already: the close code tells.
    }
  }
  const pong = c
    .next<PongMessage>((m) => m.type === 'pong' && (m as PongMessage).t === 424242, CASE_WAIT_MS)
    .then(() => 'open' as const)
    .catch(() => 'nothing' as const)
  const fate = await Promise.race([closed, pong, timeout])
  if (fate === 'open') return 'open'
  if (typeof fate === 'number') return fate
  // Neither closed nor answering: a hung connection is a failure, reported as code 0.
  return await Promise.race([
    closed,
    new Promise<number>((r) => setTimeout(() => r(0), CASE_WAIT_MS)),
  ])
}

let pingT = 1_000_000
async function bystanderServed(where: string): Promise<void> {
  const t = ++pingT
  bystander.send({ type: 'ping', t })
  await bystander
    .next<PongMessage>((m) => m.type === 'pong' && (m as PongMessage).t === t)
    .catch((error: unknown) => {
      throw new Error(`bystander not served after ${where}: ${String(error)}`)
    })
}

function heapUsedAfterGc(): number {
  setFlagsFromString('--expose-gc')
  const gc = runInNewContext('gc') as () => void
  gc()
  gc()
  return process.memoryUsage().heapUsed
}
