// Shared by the relay's `/yjs` edge tests (issue 13 cases 4, 6, 8, 15): a relay made the way the
// CLI makes it (`createRelay` with `dataDir` and a schema with a Yjs entity type, so it serves
// `/yjs/` and writes CRDT snapshots), and unmodified `y-websocket` providers with `ws` as their
// WebSocket and the token as a subprotocol. Every wait is bounded.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { defineEntity, defineSchema } from '@ledgerline/core'
import WebSocket from 'ws'
import { WebsocketProvider } from 'y-websocket'
import * as Y from 'yjs'
import { SECRET } from './edges.test-helper.ts'
import { createRelay, YJS_SUBPROTOCOL, YJS_TOKEN_SUBPROTOCOL_PREFIX } from './index.ts'
import type { Relay, RelayLimits } from './index.ts'

/**
 * The Yjs entity type of these tests (the relay may not import @ledgerline/yjs): updates merge,
 * a snapshot replaces the state with its own.
 */
export const doc = defineEntity<Uint8Array>({
  type: 'doc',
  crdt: 'yjs',
  initial: Y.encodeStateAsUpdate(new Y.Doc()),
  reduce: (s, e) => {
    if (e.kind === 'yjs.snapshot') return (e.data as { state?: Uint8Array }).state ?? s
    return e.data instanceof Uint8Array ? Y.mergeUpdates([s, e.data]) : s
  },
})
export const YJS_SCHEMA = defineSchema(doc)

export interface YjsRelay {
  readonly relay: Relay
  /** `ws://host:port` (providers add `/yjs`). */
  readonly base: string
  readonly dataDir: string
  close(): Promise<void>
}

/** A relay on `dataDir` (a new temp dir when omitted; removed by `close` only then). */
export async function startYjsRelay(
  options: { dataDir?: string; limits?: Partial<RelayLimits> } = {},
): Promise<YjsRelay> {
  const own = options.dataDir === undefined
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'll-yjs-edge-'))
  const relay = await createRelay({
    port: 0,
    dataDir,
    schema: YJS_SCHEMA,
    auth: { secret: SECRET },
    logLevel: 'silent',
    limits: options.limits,
  })
  let closed = false
  return {
    relay,
    base: relay.url.replace(/\/sync$/, ''),
    dataDir,
    async close() {
      if (closed) return
      closed = true
      await relay.close()
      if (own) rmSync(dataDir, { recursive: true, force: true })
    },
  }
}

export interface Peer {
  readonly doc: Y.Doc
  readonly provider: WebsocketProvider
  /** Close codes of the provider's connection, in order (the relay's, or 1006). */
  readonly closes: number[]
  destroy(): void
}

/** An unmodified y-websocket provider in `room`, the token as a subprotocol. */
export function connectPeer(base: string, room: string, token: string, ydoc = new Y.Doc()): Peer {
  const provider = new WebsocketProvider(`${base}/yjs`, room, ydoc, {
    protocols: protocolsFor(token),
    // `ws` stands in for the browser's WebSocket; it speaks the same API.
    WebSocketPolyfill: WebSocket as unknown as typeof globalThis.WebSocket,
    disableBc: true,
    maxBackoffTime: 500,
  })
  const closes: number[] = []
  provider.on('connection-close', (event: { code: number } | null) => {
    closes.push(event?.code ?? 0)
  })
  return {
    doc: ydoc,
    provider,
    closes,
    destroy() {
      provider.destroy()
      ydoc.destroy()
    },
  }
}

export function protocolsFor(token: string): string[] {
  return [YJS_SUBPROTOCOL, `${YJS_TOKEN_SUBPROTOCOL_PREFIX}${token}`]
}

export async function until(
  check: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

/** Text of `length` characters that no compression or run-length trick makes small. */
export function paste(length: number, seed = 1): string {
  let a = seed >>> 0
  let out = ''
  while (out.length < length) {
    a = (Math.imul(a, 1_103_515_245) + 12_345) >>> 0
    out += String.fromCharCode(97 + ((a >>> 16) % 26))
  }
  return out
}
