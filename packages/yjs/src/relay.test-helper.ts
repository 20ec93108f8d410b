// Shared by the yjs package's tests against a real relay: a real @ledgerline/client on
// fake-indexeddb with `ws`, an unmodified y-websocket provider with `ws`, bounded waits, and
// texts from a seeded generator. Every client and provider is registered for cleanup.
import 'fake-indexeddb/auto'
import type { Client, WebSocketConstructor } from '@ledgerline/client'
import { createClient } from '@ledgerline/client'
import type { Schema } from '@ledgerline/core'
import { YJS_SUBPROTOCOL, YJS_TOKEN_SUBPROTOCOL_PREFIX } from '@ledgerline/relay'
import { IDBFactory, IDBKeyRange } from 'fake-indexeddb'
import { WebSocket } from 'ws'
import { WebsocketProvider } from 'y-websocket'
import * as Y from 'yjs'

export type Cleanups = (() => Promise<void> | void)[]

/** A client of `schema` on its own (or the given) in-memory IndexedDB; closed at cleanup. */
export function openClient(
  cleanups: Cleanups,
  url: string,
  token: string,
  schema: Schema,
  idb: IDBFactory = new IDBFactory(),
): Client {
  const client = createClient({
    url,
    token,
    schema,
    dbName: 'till',
    indexedDB: idb,
    IDBKeyRange,
    WebSocket: WebSocket as unknown as WebSocketConstructor,
    locks: null,
    BroadcastChannel: null,
    persist: false,
  })
  cleanups.push(() => client.close().catch(() => undefined))
  return client
}

/** A y-websocket provider in `room` (the token as a subprotocol); destroyed at cleanup. */
export function connect(cleanups: Cleanups, url: string, room: string, token: string) {
  const doc = new Y.Doc()
  const provider = new WebsocketProvider(url, room, doc, {
    protocols: [YJS_SUBPROTOCOL, `${YJS_TOKEN_SUBPROTOCOL_PREFIX}${token}`],
    WebSocketPolyfill: WebSocket as unknown as typeof globalThis.WebSocket,
    disableBc: true,
    maxBackoffTime: 200,
  })
  cleanups.push(() => {
    provider.destroy()
    doc.destroy()
  })
  return { doc, provider }
}

export async function until(
  check: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

/** Text of `length` characters that no compression or run-length trick makes small. */
export function paste(length: number, seed: number): string {
  let a = seed >>> 0
  let out = ''
  while (out.length < length) {
    a = (Math.imul(a, 1_103_515_245) + 12_345) >>> 0
    out += String.fromCharCode(97 + ((a >>> 16) % 26))
  }
  return out
}
