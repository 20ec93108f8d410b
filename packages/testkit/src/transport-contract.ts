/**
 * The conformance suite of the transport: the socket the client (and the simulation) plugs
 * in, as `transport.ts` of `@ledgerline/client` states it. Run against a real `ws` WebSocket
 * to a real relay, and against `createMemoryTransport` with a relay double; a transport is
 * finished when it passes.
 *
 * The suite talks the Ledgerline protocol to whatever listens at `url`, and relies only on what
 * every relay does: `welcome` answers a good `hello`, `pong` answers `ping`, `ack` answers a
 * `push` with one result per entry, a subscription gets the entries pushed, a bad frame gets an
 * `error` and a close with its kind's code, and shutting down closes every socket with 1001.
 *
 * What it proves, by the numbers of `transport.ts`:
 * 1. events come asynchronously; `open` first and once, `close` last and once;
 * 2. frames arrive whole (hundreds of KB) and in order, both ways, as binary;
 * 3. `close` carries the closing side's code (the relay's 4400 and 1001, the client's own);
 * 4. `send` while connecting throws, after close it neither throws nor delivers;
 * 5. `readyState` follows connecting → open → closing → closed;
 * plus a connection that cannot open: no `open`, one `close`.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { Entry, StoredEntry } from '@ledgerline/core'
import type { Message } from '@ledgerline/protocol'
import {
  decodeMessage,
  encodeMessage,
  ENTRY_DATA_BYTES_MAX,
  ERROR_KINDS,
  PROTOCOL_VERSION,
} from '@ledgerline/protocol'
import type { TransportEvent, WebSocketConstructor, WebSocketLike } from '@ledgerline/client'

export interface TransportContractSubject {
  /** The transport under test. */
  readonly WebSocket: WebSocketConstructor
  /** A relay's sync endpoint reachable through it. */
  readonly url: string
  /** An endpoint where nothing listens. */
  readonly unreachableUrl: string
  /** A `hello` the relay welcomes: its token (tenant `t1`, may write `contract/*`). */
  readonly token: () => Promise<string>
  /** The relay shuts down: it closes every socket. */
  readonly shutdown: () => Promise<void>
  readonly cleanup: () => Promise<void>
}

/** How long the suite waits for one expected event. */
const EVENT_WAIT_MS = 10_000

/**
 * Registers the conformance suite for one transport.
 *
 * @example
 * runTransportContract('memory', async () => {
 *   const transport = createMemoryTransport()
 *   const relay = serveRelayDouble(transport, 'memory://relay/sync')
 *   return { WebSocket: transport.WebSocket, url: 'memory://relay/sync', … }
 * })
 */
export function runTransportContract(
  name: string,
  setup: () => Promise<TransportContractSubject>,
): void {
  describe(`transport contract: ${name}`, () => {
    let subject: TransportContractSubject
    const sockets: WebSocketLike[] = []
    beforeEach(async () => {
      subject = await setup()
    })
    afterEach(async () => {
      for (const ws of sockets.splice(0)) if (ws.readyState < 2) ws.close()
      await subject.cleanup()
    })

    const connect = (url = subject.url) => {
      const ws = new subject.WebSocket(url)
      ws.binaryType = 'arraybuffer'
      sockets.push(ws)
      return { ws, log: watch(ws) }
    }
    /** Connects and says hello; resolves once welcomed. */
    const welcomed = async () => {
      const c = connect()
      await c.log.next('open')
      const clientId = randomClientId()
      c.ws.send(
        encodeMessage({
          type: 'hello',
          protocol: PROTOCOL_VERSION,
          token: await subject.token(),
          clientId,
        }),
      )
      const welcome = await c.log.nextMessage()
      expect(welcome.type).toBe('welcome')
      return { ...c, clientId, tenant: (welcome as { tenant: string }).tenant }
    }

    it('opens asynchronously and delivers the relay’s first frame as binary', async () => {
      const { ws, log } = connect()
      expect(ws.readyState).toBe(0)
      expect(log.events).toEqual([]) // nothing from inside the constructor
      await log.next('open')
      expect(ws.readyState).toBe(1)
      ws.send(
        encodeMessage({
          type: 'hello',
          protocol: PROTOCOL_VERSION,
          token: await subject.token(),
          clientId: randomClientId(),
        }),
      )
      const event = await log.next('message')
      expect(event.data instanceof ArrayBuffer).toBe(true)
      expect(decodeMessage(event.data as ArrayBuffer).type).toBe('welcome')
      expect(log.events.map((e) => e.type)).toEqual(['open', 'message'])
    })

    it('keeps the order of frames both ways', async () => {
      const { ws, log } = await welcomed()
      const count = 200
      for (let t = 1; t <= count; t++) ws.send(encodeMessage({ type: 'ping', t }))
      const pongs: number[] = []
      while (pongs.length < count) {
        const m = await log.nextMessage()
        if (m.type === 'pong') pongs.push(m.t)
      }
      expect(pongs).toEqual(Array.from({ length: count }, (_, i) => i + 1))
    })

    it('carries frames of hundreds of kilobytes whole, both ways', async () => {
      const { ws, log, clientId, tenant } = await welcomed()
      // 12 entries of almost ENTRY_DATA_BYTES_MAX each: a push of about 700 KB, and a page of
      // the same entries back. Each text differs at every position, so a lost, doubled or
      // moved chunk of bytes shows.
      const entries = Array.from({ length: 12 }, (_, i) => bigEntry(tenant, clientId, i + 1))
      const push = encodeMessage({ type: 'push', batch: 1, entries })
      expect(push.byteLength).toBeGreaterThan(600_000)
      ws.send(push)
      const ack = await log.nextMessage()
      expect(ack.type).toBe('ack')
      const results = (ack as Extract<Message, { type: 'ack' }>).results
      expect(results.map((r) => [r.id, r.status])).toEqual(entries.map((e) => [e.id, 'appended']))
      ws.send(
        encodeMessage({ type: 'subscribe', sub: 1, scope: ['contract/*'], cursors: {}, credit: 4 }),
      )
      const received: StoredEntry[] = []
      while (received.length < entries.length) {
        const m = await log.nextMessage()
        if (m.type === 'entries') received.push(...m.entries)
      }
      // Pages come in offset order per partition, not in push order: compare by id, and say
      // only which texts differ (a diff of 700 KB of text helps nobody).
      const sent = new Map(entries.map((e) => [e.id, JSON.stringify(e.data)]))
      expect(received.map((e) => e.id).sort()).toEqual([...sent.keys()].sort())
      const differ = received.filter((e) => JSON.stringify(e.data) !== sent.get(e.id))
      expect(differ.map((e) => e.id)).toEqual([])
    })

    it('closes with the relay’s code after the frames it sent before, and delivers nothing after', async () => {
      const { ws, log } = await welcomed()
      ws.send(new Uint8Array([0xc1])) // never valid MessagePack
      const error = await log.nextMessage()
      expect(error).toMatchObject({ type: 'error', kind: 'bad_message' })
      const close = await log.next('close')
      expect(close.code).toBe(ERROR_KINDS.bad_message.closeCode)
      expect(ws.readyState).toBe(3)
      ws.send(encodeMessage({ type: 'ping', t: 1 })) // after close: dropped, no throw
      await settle()
      expect(log.events.filter((e) => e.type === 'close').length).toBe(1)
      expect(log.events.at(-1)?.type).toBe('close')
    })

    it('gives a socket the client closes one close event with its code; send after it is dropped', async () => {
      const { ws, log } = await welcomed()
      ws.close(1000, 'done')
      expect(ws.readyState).toBe(2)
      const close = await log.next('close')
      expect(close.code).toBe(1000)
      expect(ws.readyState).toBe(3)
      expect(() => ws.send(encodeMessage({ type: 'ping', t: 2 }))).not.toThrow()
      expect(() => ws.close()).not.toThrow()
      await settle()
      expect(log.events.filter((e) => e.type === 'close').length).toBe(1)
      expect(log.events.at(-1)?.type).toBe('close')
    })

    it('refuses a send while connecting', async () => {
      const { ws, log } = connect()
      expect(() => ws.send(encodeMessage({ type: 'ping', t: 1 }))).toThrow(
        /connecting|invalidstate/i,
      )
      await log.next('open')
      ws.close()
      await log.next('close')
    })

    it('gives a connection that cannot open no open and one close, an error at most before it', async () => {
      const { ws, log } = connect(subject.unreachableUrl)
      const close = await log.next('close')
      expect(close.code).toBe(1006)
      expect(ws.readyState).toBe(3)
      await settle()
      const types = log.events.map((e) => e.type)
      expect(types.filter((t) => t !== 'error')).toEqual(['close'])
      expect(types.at(-1)).toBe('close')
    })

    it('closes every socket with 1001 when the relay shuts down', async () => {
      const a = await welcomed()
      const b = await welcomed()
      await subject.shutdown()
      for (const c of [a, b]) {
        expect((await c.log.next('close')).code).toBe(1001)
        expect(c.ws.readyState).toBe(3)
      }
    })
  })
}

interface Watched {
  readonly events: (TransportEvent & { readonly type: string })[]
  /** The next event of `type` not yet taken (in order), within EVENT_WAIT_MS. */
  next(type: 'open' | 'message' | 'error' | 'close'): Promise<TransportEvent>
  /** The next message, decoded. */
  nextMessage(): Promise<Message>
}

function watch(ws: WebSocketLike): Watched {
  const events: (TransportEvent & { readonly type: string })[] = []
  const taken = new Map<string, number>()
  const wakers = new Set<() => void>()
  for (const type of ['open', 'message', 'error', 'close'] as const) {
    ws.addEventListener(type, (event) => {
      events.push({ type, data: event.data, code: event.code, reason: event.reason })
      for (const w of wakers) w()
    })
  }
  const next = async (type: string): Promise<TransportEvent> => {
    const deadline = Date.now() + EVENT_WAIT_MS
    for (;;) {
      const seen = events.filter((e) => e.type === type)
      const at = taken.get(type) ?? 0
      if (seen.length > at) {
        taken.set(type, at + 1)
        return seen[at] as TransportEvent
      }
      if (Date.now() > deadline) throw new Error(`no ${type} event within ${EVENT_WAIT_MS} ms`)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, 50)
        function done() {
          clearTimeout(timer)
          wakers.delete(done)
          resolve()
        }
        wakers.add(done)
      })
    }
  }
  return {
    events,
    next,
    nextMessage: async () => decodeMessage(toBytes((await next('message')).data)),
  }
}

function toBytes(data: unknown): Uint8Array {
  if (data instanceof ArrayBuffer) return new Uint8Array(data)
  if (data instanceof Uint8Array) return data
  throw new Error(`a frame arrived as ${typeof data}, not as binary`)
}

/** Lets anything still on its way arrive (there must be nothing). */
function settle(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 100))
}

function randomClientId(): string {
  return Array.from({ length: 32 }, () => Math.floor(Math.random() * 16).toString(16)).join('')
}

function bigEntry(tenant: string, clientId: string, clientSeq: number): Entry {
  const length = ENTRY_DATA_BYTES_MAX - 6_000
  let text = ''
  for (let i = 0; text.length < length; i++) text += `${clientSeq}:${i};`
  return {
    id: `${clientId}-${clientSeq}`,
    tenant,
    entity: `contract/e${clientSeq % 3}`,
    kind: 'contract.big',
    data: { text: text.slice(0, length) },
    intent: 'fact',
    clientId,
    clientSeq,
    hlc: `${String(Date.now()).padStart(15, '0')}:${String(clientSeq).padStart(5, '0')}:${clientId}`,
    occurredAt: Date.now(),
  }
}
