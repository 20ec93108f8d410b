// A WebSocket for the client (passed as `options.WebSocket`) that records what crosses the wire:
// sockets opened, and every frame sent and received, decoded with the protocol's codec. The edge
// tests count with it: reconnects, hellos, pushes, refusals, errors. It changes nothing it sees.
import { WebSocket } from 'ws'
import { decodeMessage } from '@ledgerline/protocol'
import type { WebSocketConstructor } from '../src/index.ts'

/** A frame as the spy saw it; `type` is `'?'` when the codec of this build cannot decode it. */
export interface SeenFrame {
  readonly at: number
  readonly bytes: number
  readonly type: string
  readonly message: Readonly<Record<string, unknown>>
}

export interface WireSpy {
  /** Pass as the client's `WebSocket` option. */
  readonly WebSocket: WebSocketConstructor
  /** Sockets the client opened so far. */
  opened(): number
  readonly sent: SeenFrame[]
  readonly received: SeenFrame[]
  /** Frames of `type` sent (`'sent'`) or received (`'received'`) since `since` (ms epoch). */
  count(direction: 'sent' | 'received', type: string, since?: number): number
  /** Ack results received, flattened, in arrival order. */
  ackResults(): readonly Readonly<Record<string, unknown>>[]
  /** `error` messages received, as `kind`s, in arrival order. */
  errorKinds(): readonly string[]
}

export function createWireSpy(): WireSpy {
  let opened = 0
  const sent: SeenFrame[] = []
  const received: SeenFrame[] = []
  const seen = (data: unknown): SeenFrame => {
    const bytes = toBytes(data)
    try {
      const message = decodeMessage(bytes) as unknown as Record<string, unknown>
      return { at: Date.now(), bytes: bytes.byteLength, type: String(message.type), message }
    } catch {
      return { at: Date.now(), bytes: bytes.byteLength, type: '?', message: {} }
    }
  }
  class SpyWebSocket extends WebSocket {
    constructor(url: string) {
      super(url)
      opened++
      this.addEventListener('message', (event) => received.push(seen(event.data)))
      const send = this.send.bind(this) as (data: unknown) => void
      this.send = ((data: unknown) => {
        sent.push(seen(data))
        send(data)
      }) as WebSocket['send']
    }
  }
  const spy: WireSpy = {
    WebSocket: SpyWebSocket as unknown as WebSocketConstructor,
    opened: () => opened,
    sent,
    received,
    count: (direction, type, since = 0) =>
      (direction === 'sent' ? sent : received).filter((f) => f.type === type && f.at >= since)
        .length,
    ackResults: () =>
      received
        .filter((f) => f.type === 'ack')
        .flatMap((f) => (f.message.results ?? []) as Record<string, unknown>[]),
    errorKinds: () => received.filter((f) => f.type === 'error').map((f) => String(f.message.kind)),
  }
  return spy
}

function toBytes(data: unknown): Uint8Array {
  if (data instanceof Uint8Array) return data
  if (data instanceof ArrayBuffer) return new Uint8Array(data)
  if (Array.isArray(data)) return new Uint8Array(Buffer.concat(data as Buffer[]))
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
  return new TextEncoder().encode(String(data))
}
