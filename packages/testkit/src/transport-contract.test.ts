// Goal: `runTransportContract` on both transports the client plugs in: `ws`'s WebSocket to a
// real relay (createRelay, SQLite in a temp dir, loopback, port 0), and createMemoryTransport
// with a relay double that answers the protocol as a relay does; and the memory transport's own
// promises (order whatever the delays, a dropped network).
// Method: the contract suite for each; the memory transport also driven by a shuffling `defer`.
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { WebSocket } from 'ws'
import type { StoredEntry } from '@ledgerline/core'
import type { WebSocketConstructor } from '@ledgerline/client'
import type { ClientMessage, RelayMessage } from '@ledgerline/protocol'
import {
  decodeMessage,
  encodeMessage,
  ENTRY_DATA_BYTES_MAX,
  ERROR_KINDS,
  FRAME_BYTES_MAX,
  PROTOCOL_VERSION,
  PUSH_ENTRIES_MAX,
  PUSH_IN_FLIGHT_MAX,
} from '@ledgerline/protocol'
import { createRelay, signToken } from '@ledgerline/relay'
import { createMemoryTransport, type MemoryTransport } from './memory-transport.ts'
import { MEMORY_TRANSPORT_EVENTS_QUEUED_MAX } from './sim/limits.ts'
import { runTransportContract } from './transport-contract.ts'

const SECRET = 'transport-contract-secret-0123456789'

runTransportContract('ws to a real relay', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'ledgerline-transport-'))
  const relay = await createRelay({
    port: 0,
    dataDir,
    auth: { secret: SECRET },
    logLevel: 'silent',
  })
  return {
    WebSocket: WebSocket as unknown as WebSocketConstructor,
    url: relay.url,
    unreachableUrl: `ws://127.0.0.1:${await freePort()}/sync`,
    token: () =>
      signToken({ secret: SECRET, tenant: 't1', sub: 'contract', read: ['*'], write: ['*'] }),
    shutdown: () => relay.close(),
    cleanup: async () => {
      await relay.close()
      rmSync(dataDir, { recursive: true, force: true })
    },
  }
})

runTransportContract('memory', async () => {
  const transport = createMemoryTransport()
  const relay = serveRelayDouble(transport, 'memory://relay/sync')
  return {
    WebSocket: transport.WebSocket,
    url: 'memory://relay/sync',
    unreachableUrl: 'memory://nobody/sync',
    token: async () => 'memory-token',
    shutdown: async () => relay.shutdown(),
    cleanup: async () => relay.shutdown(),
  }
})

describe('memory transport', () => {
  it('keeps each direction in order when defer runs its callbacks out of order', async () => {
    // A defer that holds callbacks and runs the newest first: the reverse of their order.
    const held: (() => void)[] = []
    const transport = createMemoryTransport({ defer: (fn) => void held.push(fn) })
    const runShuffled = () => {
      while (held.length > 0) (held.pop() as () => void)()
    }
    const got: number[] = []
    transport.listen('memory://echo', (socket) => {
      socket.onMessage((bytes) => socket.send(bytes))
    })
    const ws = new transport.WebSocket('memory://echo')
    ws.binaryType = 'arraybuffer'
    ws.addEventListener('message', (e) =>
      got.push(new Uint8Array(e.data as ArrayBuffer)[0] as number),
    )
    runShuffled()
    expect(ws.readyState).toBe(1)
    for (let i = 0; i < 50; i++) ws.send(new Uint8Array([i]))
    runShuffled()
    runShuffled()
    expect(got).toEqual(Array.from({ length: 50 }, (_, i) => i))
  })

  it('cuts both ends with 1006 when the network drops, and delivers nothing queued', async () => {
    const transport = createMemoryTransport()
    const serverCodes: number[] = []
    const serverGot: number[] = []
    transport.listen('memory://drop', (socket) => {
      socket.onMessage((b) => serverGot.push(b.length))
      socket.onClose((code) => serverCodes.push(code))
    })
    const ws = new transport.WebSocket('memory://drop')
    const codes: (number | undefined)[] = []
    ws.addEventListener('close', (e) => codes.push(e.code))
    await new Promise<void>((resolve) => ws.addEventListener('open', () => resolve()))
    expect(transport.connections()).toBe(1)
    ws.send(new Uint8Array(3))
    transport.dropAll()
    await new Promise((r) => setTimeout(r, 20))
    expect(codes).toEqual([1006])
    expect(serverCodes).toEqual([1006])
    expect(serverGot).toEqual([])
    expect(transport.connections()).toBe(0)
  })
})

describe('memory transport bounds', () => {
  it('cuts a connection whose peer does not take its events past the bound', () => {
    const held: (() => void)[] = []
    const transport = createMemoryTransport({ defer: (fn) => void held.push(fn) })
    const run = () => {
      while (held.length > 0) (held.shift() as () => void)()
    }
    const serverCodes: number[] = []
    let received = 0
    transport.listen('memory://slow', (socket) => {
      socket.onMessage(() => received++)
      socket.onClose((code) => serverCodes.push(code))
    })
    const ws = new transport.WebSocket('memory://slow')
    const codes: (number | undefined)[] = []
    ws.addEventListener('close', (e) => codes.push(e.code))
    run()
    for (let i = 0; i <= MEMORY_TRANSPORT_EVENTS_QUEUED_MAX; i++) ws.send(new Uint8Array([1]))
    run()
    expect(received).toBe(0)
    expect(codes).toEqual([1006])
    expect(serverCodes).toEqual([1006])
    expect(ws.readyState).toBe(3)
  })
})

/**
 * A relay double on a memory transport: the relay's answers the contract relies on (welcome,
 * pong, one ack result per pushed entry, the pushed entries to a subscription, an error and
 * its close code for a bad frame, 1001 at shutdown), and nothing else.
 */
function serveRelayDouble(transport: MemoryTransport, url: string): { shutdown(): void } {
  const log: StoredEntry[] = []
  const sockets = new Set<{ close(code: number, reason: string): void }>()
  const stop = transport.listen(url, (socket) => {
    sockets.add(socket)
    socket.onClose(() => sockets.delete(socket))
    const send = (m: RelayMessage) => socket.send(encodeMessage(m))
    socket.onMessage((bytes) => {
      let m: ClientMessage
      try {
        m = decodeMessage(bytes) as ClientMessage
      } catch (error) {
        send({
          type: 'error',
          kind: 'bad_message',
          message: String(error),
          backoffMsMin: ERROR_KINDS.bad_message.backoffMsMin,
        })
        socket.close(ERROR_KINDS.bad_message.closeCode, 'bad_message')
        return
      }
      switch (m.type) {
        case 'hello':
          send({
            type: 'welcome',
            protocol: PROTOCOL_VERSION,
            tenant: 't1',
            subject: 'till',
            grants: { read: ['*'], write: ['*'] },
            role: 'head_office',
            log: { id: 'transport-contract-log', generation: 1 },
            limits: {
              pushEntriesMax: PUSH_ENTRIES_MAX,
              pushBytesMax: FRAME_BYTES_MAX,
              entryDataBytesMax: ENTRY_DATA_BYTES_MAX,
              pushInFlightMax: PUSH_IN_FLIGHT_MAX,
            },
            partitions: 1,
            clientSeqHigh: 0,
            serverTime: Date.now(),
            expiresAt: Date.now() + 3_600_000,
          })
          return
        case 'ping':
          send({ type: 'pong', t: m.t })
          return
        case 'push':
          send({
            type: 'ack',
            batch: m.batch,
            first: 0,
            done: true,
            results: m.entries.map((e) => {
              const stored = {
                ...e,
                version: 1,
                partition: 0,
                offset: log.length + 1,
                committedAt: 1,
              }
              log.push(stored)
              return {
                id: e.id,
                status: 'appended',
                version: 1,
                partition: 0,
                offset: stored.offset,
                committedAt: 1,
                corrections: [],
              } as const
            }),
          })
          return
        case 'subscribe':
          send({
            type: 'entries',
            sub: m.sub,
            entries: [...log],
            cursors: { 0: log.length },
            live: true,
          })
          return
        default:
          return
      }
    })
  })
  return {
    shutdown() {
      stop()
      for (const s of sockets) s.close(1001, 'shutting_down')
    },
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}
