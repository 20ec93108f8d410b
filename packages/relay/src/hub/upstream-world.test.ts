// Goal: the upstream link runs on the world it is given (upstream-link.ts invariant 7): it dials
// with the injected socket class, sets every timer on the injected timers and reads their clock,
// draws its jitter from the injected random bytes, pings head office itself when the link is
// quiet, and gives up on a silent link and dials again, all without one real timer; and a
// mirror below head office's retention marks subscribes a bounded number of times (invariant 9).
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { afterEach, describe, expect, it } from 'vitest'
import { decodeMessage, encodeMessage } from '@ledgerline/protocol'
import { ERROR_KINDS } from '@ledgerline/protocol'
import type {
  ClientMessage,
  ErrorMessage,
  TransportEvent,
  WelcomeMessage,
} from '@ledgerline/protocol'
import type { RelayTimers } from '../timers.ts'
import { manualTimers } from './hub.test-helper.ts'
import { HUB_FILE, openHubStore } from './hub-store.ts'
import type { HubStore } from './hub-store.ts'
import { UPSTREAM_PING_MS, UPSTREAM_SILENCE_MS } from './hub-limits.ts'
import { createUpstreamLink } from './upstream-link.ts'

class FakeSocket {
  static made: FakeSocket[] = []
  binaryType = 'blob'
  readyState = 0
  readonly sent: ClientMessage[] = []
  closed = false
  readonly #listeners = new Map<string, ((e: TransportEvent) => void)[]>()
  readonly url: string
  constructor(url: string) {
    this.url = url
    FakeSocket.made.push(this)
  }
  send(data: Uint8Array): void {
    this.sent.push(decodeMessage(data) as ClientMessage)
  }
  close(): void {
    if (this.closed) return
    this.closed = true
    this.readyState = 3
    // As a browser's: the close event comes later, never from inside the call.
    queueMicrotask(() => this.emit('close', { code: 1005 }))
  }
  addEventListener(type: string, listener: (e: TransportEvent) => void): void {
    this.#listeners.set(type, [...(this.#listeners.get(type) ?? []), listener])
  }
  emit(type: string, event: TransportEvent): void {
    if (type === 'open' && this.readyState === 0) this.readyState = 1
    for (const l of this.#listeners.get(type) ?? []) l(event)
  }
  deliver(m: WelcomeMessage | ErrorMessage): void {
    const bytes = encodeMessage(m)
    this.emit('message', {
      data: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength),
    })
  }
}

const welcome = (now: number): WelcomeMessage => ({
  type: 'welcome',
  protocol: 3,
  tenant: 'acme',
  subject: 'hub-7',
  grants: { read: ['*'], write: [], forward: ['*'] },
  role: 'head_office',
  log: { id: 'log-1', generation: 1 },
  limits: {
    pushEntriesMax: 100,
    pushBytesMax: 1_000_000,
    entryDataBytesMax: 8_000,
    pushInFlightMax: 4,
  },
  partitions: 4,
  clientSeqHigh: 0,
  serverTime: now,
  expiresAt: now + 3_600_000,
})

describe('the upstream link on an injected world', () => {
  const undo: (() => Promise<void> | void)[] = []
  afterEach(async () => {
    for (const u of undo.splice(0).reverse()) await u()
    FakeSocket.made = []
  })

  /** A link on a fresh hub store, dialing `FakeSocket`s on `timers`; closed after the test. */
  function linkOnFakes(timers: RelayTimers, random: (bytes: Uint8Array) => void) {
    const dir = mkdtempSync(join(tmpdir(), 'll-uplink-'))
    const store: HubStore = openHubStore(join(dir, HUB_FILE))
    undo.push(async () => {
      await store.close()
      rmSync(dir, { recursive: true, force: true })
    })
    const link = createUpstreamLink({
      url: 'wss://hq.example/sync',
      token: async () => 'hub-token',
      store,
      clientId: 'c'.repeat(32),
      logger: pino({ level: 'silent' }),
      WebSocket: FakeSocket,
      timers,
      random,
    })
    undo.push(() => link.close())
    return link
  }

  it('dials, pings when quiet, cuts a silent link and dials again, on its own timers', async () => {
    const timers = manualTimers()
    const randomCalls: number[] = []
    const link = linkOnFakes(timers, (bytes) => {
      randomCalls.push(bytes.length)
      bytes.fill(0)
    })
    undo.push(() => link.close())
    await timers.advance(0)
    expect(FakeSocket.made.map((s) => s.url)).toEqual(['wss://hq.example/sync'])
    const first = FakeSocket.made[0] as FakeSocket
    first.emit('open', {})
    expect(first.sent[0]).toMatchObject({ type: 'hello', token: 'hub-token' })
    first.deliver(welcome(timers.now()))
    expect(link.state()).toEqual({ connected: true, since: timers.now() })
    expect(first.sent.map((m) => m.type)).toEqual(['hello', 'subscribe'])

    // Quiet for a ping interval: the link asks head office (a protocol ping).
    await timers.advance(UPSTREAM_PING_MS)
    expect(first.sent.filter((m) => m.type === 'ping')).toHaveLength(1)

    // Still nothing back by the silence bound: the link gives up on the socket.
    await timers.advance(UPSTREAM_SILENCE_MS - UPSTREAM_PING_MS)
    expect(link.state().connected).toBe(false)
    expect(first.closed).toBe(true)
    expect(FakeSocket.made).toHaveLength(1)

    // It dials again after a backoff whose jitter came from the injected bytes.
    await timers.advance(10_000)
    expect(randomCalls.length).toBeGreaterThan(0)
    expect(FakeSocket.made).toHaveLength(2)
  })

  it('subscribes a bounded number of times when head office says history_dropped', async () => {
    // Goal: invariant 9, no loop on history_dropped (backoff 0, and a welcome resets the
    // backoff). Method: head office answers every subscribe with history_dropped and closes
    // 4410; the test plays five sessions (open, welcome, and the error if a subscribe came)
    // and counts the subscribes of all of them; the link is still up for forwarding.
    const timers = manualTimers()
    const link = linkOnFakes(timers, (bytes) => bytes.fill(0))
    const kind = 'history_dropped'
    const upWithout: boolean[] = []
    for (let session = 0; session < 5; session++) {
      // Dial (after the backoff of the last close).
      for (let i = 0; i < 100 && FakeSocket.made.length <= session; i++) {
        await timers.advance(1_000)
      }
      const socket = FakeSocket.made[session] as FakeSocket
      expect(socket).toBeDefined()
      socket.emit('open', {})
      socket.deliver(welcome(timers.now()))
      if (socket.sent.some((m) => m.type === 'subscribe')) {
        socket.deliver({ type: 'error', kind, message: 'cursor below', backoffMsMin: 0 })
        socket.emit('close', { code: ERROR_KINDS[kind].closeCode })
      } else {
        // Up without a subscription: cut it to make the next session.
        upWithout.push(link.state().connected)
        socket.emit('close', { code: 1006 })
      }
    }
    const subscribes = FakeSocket.made.flatMap((s) => s.sent).filter((m) => m.type === 'subscribe')
    expect(subscribes).toHaveLength(1)
    // Every later session was welcomed and stayed up for forwarding, without a subscribe.
    expect(upWithout).toEqual([true, true, true, true])
    expect(link.mirror()).toMatchObject({ _tag: 'history_dropped', message: 'cursor below' })
  })
})
