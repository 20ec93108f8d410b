// A wire-level client for the relay's tests: `ws` plus the protocol codec, no Ledgerline client.
// Every wait is bounded; messages are queued so a test can take them in order.
import { randomBytes } from 'node:crypto'
import WebSocket from 'ws'
import { entryId } from '@ledgerline/core'
import type { Data, Entry } from '@ledgerline/core'
import { decodeMessage, encodeMessage, PROTOCOL_VERSION } from '@ledgerline/protocol'
import type { ClientMessage, Message, RelayMessage, WelcomeMessage } from '@ledgerline/protocol'

export const WAIT_MS = 5_000

export interface WireClient {
  readonly ws: WebSocket
  readonly clientId: string
  /** Every message received, in order. */
  readonly received: RelayMessage[]
  /** Resolves with the close code and reason. */
  readonly closed: Promise<{ code: number; reason: string }>
  send(message: ClientMessage | Record<string, unknown>): void
  sendRaw(bytes: Uint8Array | string): void
  /** The next message not yet taken that satisfies `match`. */
  next<T extends RelayMessage = RelayMessage>(
    match?: (m: RelayMessage) => boolean,
    timeoutMs?: number,
  ): Promise<T>
  /** `clientIds`: the hello's earlier clientIds (none when not given). */
  hello(token: string, clientIds?: readonly string[]): Promise<RelayMessage>
  entry(
    entity: string,
    kind: string,
    data: Data,
    options?: { tenant?: string; intent?: 'fact' | 'request'; expect?: number },
  ): Entry
  close(): void
}

/** Opens a socket to `url`; rejects when the upgrade is refused. */
export async function openClient(
  url: string,
  options: { origin?: string; tenant?: string; clientId?: string } = {},
): Promise<WireClient> {
  const clientId = options.clientId ?? randomBytes(16).toString('hex')
  const ws = new WebSocket(url, {
    perMessageDeflate: false,
    ...(options.origin === undefined ? {} : { origin: options.origin }),
  })
  const received: RelayMessage[] = []
  let taken = 0
  const taken_ = new Set<number>()
  let wake: (() => void) | undefined
  ws.on('message', (data: Buffer) => {
    received.push(decodeMessage(new Uint8Array(data)) as RelayMessage)
    wake?.()
  })
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    ws.on('close', (code, reason) => {
      resolve({ code, reason: reason.toString() })
      wake?.()
    })
  })
  ws.on('error', () => {})
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve())
    ws.once('unexpected-response', (_req, res) =>
      reject(new Error(`upgrade refused: ${res.statusCode}`)),
    )
    ws.once('error', reject)
  })
  let seq = 0
  const client: WireClient = {
    ws,
    clientId,
    received,
    closed,
    send: (message) => ws.send(encodeMessage(message as Message)),
    sendRaw: (bytes) => ws.send(bytes),
    async next<T extends RelayMessage>(
      match: (m: RelayMessage) => boolean = () => true,
      timeoutMs = WAIT_MS,
    ): Promise<T> {
      const until = Date.now() + timeoutMs
      for (;;) {
        for (let i = taken; i < received.length; i++) {
          if (taken_.has(i)) continue
          const m = received[i] as RelayMessage
          if (match(m)) {
            taken_.add(i)
            while (taken_.has(taken)) taken++
            return m as T
          }
        }
        const left = until - Date.now()
        if (left <= 0 || ws.readyState === ws.CLOSED) {
          throw new Error(
            `no matching message in ${timeoutMs} ms; got ${JSON.stringify(received.slice(-3)).slice(0, 400)}`,
          )
        }
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, Math.min(left, 200))
          wake = () => {
            clearTimeout(timer)
            resolve()
          }
        })
      }
    },
    async hello(token, clientIds) {
      const earlier = clientIds === undefined ? {} : { clientIds }
      ws.send(
        encodeMessage({ type: 'hello', protocol: PROTOCOL_VERSION, token, clientId, ...earlier }),
      )
      const m = await client.next((x) => x.type === 'welcome' || x.type === 'error')
      if (m.type === 'welcome') seq = (m as WelcomeMessage).clientSeqHigh
      return m
    },
    entry(entity, kind, data, opts = {}) {
      seq++
      return {
        id: entryId(clientId, seq),
        tenant: opts.tenant ?? options.tenant ?? 'acme',
        entity,
        kind,
        data,
        intent: opts.intent ?? 'fact',
        clientId,
        clientSeq: seq,
        hlc: `${String(Date.now()).padStart(15, '0')}:00000:${clientId}`,
        occurredAt: Date.now(),
        ...(opts.expect === undefined ? {} : { expect: opts.expect }),
      }
    },
    close: () => ws.close(),
  }
  return client
}

/** Polls `condition` every 10 ms until true, for at most `timeoutMs`. */
export async function waitFor(condition: () => boolean, timeoutMs = WAIT_MS): Promise<void> {
  const until = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > until) throw new Error('condition not met in time')
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}
