// Goal: the connection and its backoff: hello with the current token and clientId, pings
// answered here and the rest handed on; reconnect delays that grow from RECONNECT_MS_MIN to
// RECONNECT_MS_MAX with jitter, never below the relay's backoff floor, starting over after a
// welcome; a new token after `token_expired`; sockets dropped when not welcomed in time or
// silent too long; `reconnect()` and `offline()` acting at once.
// Method: the in-memory transport of testkit with a scripted relay end, a manual scheduler for
// every timer, a random source the test sets.
import { afterEach, describe, expect, it } from 'vitest'
import { createMemoryTransport, type MemoryServerSocket } from '@ledgerline/testkit'
import type { ClientMessage, RelayMessage } from '@ledgerline/protocol'
import { decodeMessage, encodeMessage, PROTOCOL_VERSION } from '@ledgerline/protocol'
import { createManualScheduler, settle } from '../test-support/manual-scheduler.ts'
import { ackMessage, welcomeMessage } from '../test-support/messages.ts'
import type { Connection, ConnectionErrorKind, SyncMessage } from './connection.ts'
import { createConnection, reconnectDelayMs } from './connection.ts'
import {
  PING_INTERVAL_MS,
  RECONNECT_MS_MAX,
  RECONNECT_MS_MIN,
  SILENCE_MS_MAX,
  WELCOME_TIMEOUT_MS,
} from './limits.ts'

const URL = 'memory://relay/sync'
const CLIENT = 'a'.repeat(32)
let connection: Connection | undefined
afterEach(() => connection?.stop())

function setup(options: { random?: number; token?: () => Promise<string> } = {}) {
  const transport = createMemoryTransport({ defer: (fn) => void setImmediate(fn) })
  const scheduler = createManualScheduler(1_000_000)
  const got: ClientMessage[] = []
  const sockets: MemoryServerSocket[] = []
  let invalidated = 0
  const seen: { messages: SyncMessage[]; lost: number; failed: [ConnectionErrorKind, string][] } = {
    messages: [],
    lost: 0,
    failed: [],
  }
  let relay: ((socket: MemoryServerSocket, m: ClientMessage) => void) | undefined
  const listen = (answer: (socket: MemoryServerSocket, m: ClientMessage) => void) => {
    relay = answer
    return transport.listen(URL, (socket) => {
      sockets.push(socket)
      socket.onMessage((bytes) => {
        const m = decodeMessage(bytes) as ClientMessage
        got.push(m)
        relay?.(socket, m)
      })
    })
  }
  connection = createConnection({
    url: URL,
    WebSocket: transport.WebSocket,
    token: options.token ?? (async () => 'token-1'),
    invalidateToken: () => invalidated++,
    clientId: async () => CLIENT,
    now: scheduler.now,
    random: () => options.random ?? 0.5,
    scheduler,
    events: {
      message: (_ws, m) => seen.messages.push(m),
      lost: () => seen.lost++,
      failed: (kind, message) => seen.failed.push([kind, message]),
      changed: () => {},
    },
  })
  return { connection, scheduler, got, sockets, seen, listen, invalidated: () => invalidated }
}

const send = (socket: MemoryServerSocket, m: RelayMessage) => socket.send(encodeMessage(m))
const welcome = (socket: MemoryServerSocket) =>
  send(socket, welcomeMessage({ serverTime: 1, expiresAt: 2 }))

describe('connection', () => {
  it('says hello, answers pings itself, and hands the rest to the sync loop', async () => {
    const t = setup()
    t.listen((socket, m) => {
      if (m.type === 'hello') {
        welcome(socket)
        send(socket, { type: 'ping', t: 7 })
        send(socket, ackMessage(1, []))
      }
    })
    t.connection.start()
    await settle()
    expect(t.got[0]).toEqual({
      type: 'hello',
      protocol: PROTOCOL_VERSION,
      token: 'token-1',
      clientId: CLIENT,
    })
    expect(t.got[1]).toEqual({ type: 'pong', t: 7 })
    expect(t.seen.messages.map((m) => m.type)).toEqual(['welcome', 'ack'])
    expect(t.connection.welcomed()).toBe(true)
  })

  it('backs off with jitter between half and all of an exponential ceiling, never below the floor', () => {
    expect(reconnectDelayMs(0, 0, 0)).toBe(RECONNECT_MS_MIN / 2)
    expect(reconnectDelayMs(0, 0.999_999, 0)).toBeCloseTo(RECONNECT_MS_MIN, 0)
    expect(reconnectDelayMs(3, 0, 0)).toBe((RECONNECT_MS_MIN * 8) / 2)
    expect(reconnectDelayMs(40, 0, 0)).toBe(RECONNECT_MS_MAX / 2)
    expect(reconnectDelayMs(40, 0.999_999, 0)).toBeLessThanOrEqual(RECONNECT_MS_MAX)
    expect(reconnectDelayMs(0, 0, 12_345)).toBe(12_345)
  })

  it('retries a relay that is not there ever later, and at once on reconnect()', async () => {
    const t = setup({ random: 0 })
    t.connection.start()
    await settle()
    expect(t.seen.lost).toBe(1) // every attempt opens a socket that fails
    // random() = 0: each wait is half its ceiling, and the ceiling doubles per attempt.
    for (const delay of [125, 250, 500, 1_000]) {
      const lost = t.seen.lost
      await t.scheduler.advance(delay - 1)
      expect(t.seen.lost).toBe(lost)
      await t.scheduler.advance(1)
      await settle()
      expect(t.seen.lost).toBe(lost + 1)
    }
    const unlisten = t.listen((socket, m) => m.type === 'hello' && welcome(socket))
    t.connection.reconnect() // the network is back: no waiting out the 2 s backoff
    await settle()
    expect(t.connection.welcomed()).toBe(true)
    unlisten()
  })

  it('waits the relay’s backoff floor after its error, and asks for a new token after token_expired', async () => {
    let tokens = 0
    const t = setup({ random: 0, token: async () => `token-${++tokens}` })
    let answer: 'overloaded' | 'token_expired' | 'welcome' = 'overloaded'
    t.listen((socket, m) => {
      if (m.type !== 'hello') return
      if (answer === 'welcome') return welcome(socket)
      send(socket, {
        type: 'error',
        kind: answer,
        message: answer,
        backoffMsMin: answer === 'overloaded' ? 9_000 : 0,
      })
      socket.close(4000)
    })
    t.connection.start()
    await settle()
    expect(t.seen.failed).toEqual([['overloaded', 'overloaded']])
    expect(t.seen.lost).toBe(1)
    answer = 'token_expired'
    await t.scheduler.advance(8_999)
    expect(t.sockets.length).toBe(1)
    await t.scheduler.advance(1)
    await settle()
    expect(t.sockets.length).toBe(2)
    expect(t.invalidated()).toBe(1)
    answer = 'welcome'
    await t.scheduler.advance(RECONNECT_MS_MIN) // token_expired restarts the backoff
    await settle()
    expect(t.sockets.length).toBe(3)
    expect(t.connection.welcomed()).toBe(true)
  })

  it('drops a socket not welcomed in time, and one that stays silent, pinging it first', async () => {
    const t = setup()
    let welcomeIt = false
    t.listen((socket, m) => {
      if (m.type === 'hello' && welcomeIt) welcome(socket)
    })
    t.connection.start()
    await settle()
    await t.scheduler.advance(WELCOME_TIMEOUT_MS - 1)
    expect(t.seen.lost).toBe(0)
    await t.scheduler.advance(1)
    await settle()
    expect(t.seen.lost).toBe(1)
    welcomeIt = true
    t.connection.reconnect()
    await settle()
    expect(t.connection.welcomed()).toBe(true)
    const pingsBefore = t.got.filter((m) => m.type === 'ping').length
    await t.scheduler.advance(PING_INTERVAL_MS)
    expect(t.got.filter((m) => m.type === 'ping').length).toBeGreaterThan(pingsBefore)
    expect(t.seen.lost).toBe(1)
    await t.scheduler.advance(SILENCE_MS_MAX)
    await settle()
    expect(t.seen.lost).toBe(2)
  })

  it('drops the socket at once on offline(), and tells the sync loop before anything else', async () => {
    const t = setup()
    t.listen((socket, m) => m.type === 'hello' && welcome(socket))
    t.connection.start()
    await settle()
    expect(t.connection.current()).toBeDefined()
    t.connection.offline()
    expect(t.seen.lost).toBe(1)
    expect(t.connection.current()).toBeUndefined()
    expect(t.connection.welcomed()).toBe(false)
  })
})
