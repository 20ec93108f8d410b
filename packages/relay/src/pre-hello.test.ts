// Goal: issue 13 case 14 — nothing large is buffered before `hello`: until `welcome`, a frame over
// PRE_HELLO_FRAME_BYTES_MAX (a few KiB: a hello is small) closes the socket, so sockets that never
// authenticate cannot hold the relay's memory (on 3a8bfae frames up to 1 MiB are buffered before
// hello: 400 such sockets took the relay past 500 MB).
// Method: a relay (SQLite) whose auth timeout is raised to 30 s, so that only the pre-hello bound
// can close these sockets within the test's 10 s. (1) A raw TCP socket does the WebSocket upgrade
// by hand, announces a 900 KiB frame, sends 1 KiB of it and stalls: the relay must close the
// socket without waiting for the rest. (2) A hello padded to 64 KiB is not welcomed.
import { connect } from 'node:net'
import type { Socket } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { PROTOCOL_VERSION } from '@ledgerline/protocol'
import { relayLimits, startEdgeRelay, token } from './edges.test-helper.ts'
import { openClient } from './wire-client.test-helper.ts'

const WITHIN_MS = 10_000
/** Close codes that say "frame too big" or "bad frame". */
const TOO_BIG_CLOSE_CODES = [1009, 4413, 4400]

const cleanups: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

describe('issue 13 case 14: nothing large before hello', () => {
  it('closes a socket that starts a large frame before hello, without waiting for the rest', async () => {
    const relay = await startEdgeRelay('sqlite', {
      limits: relayLimits({ authTimeoutMs: 30_000, preHelloFrameBytesMax: 8 * 1024 }),
    })
    cleanups.push(() => relay.close())
    const socket = await upgrade(relay.relay.port, '/sync')
    cleanups.push(() => void socket.destroy())
    const ended = new Promise<string>((resolve) => {
      let received = Buffer.alloc(0)
      socket.on('data', (d: Buffer) => (received = Buffer.concat([received, d])))
      socket.once('close', () => resolve(describeClose(received)))
    })
    // FIN + binary; masked, 64-bit length: 900 KiB announced, 1 KiB sent.
    const header = Buffer.alloc(14)
    header[0] = 0x82
    header[1] = 0x80 | 127
    header.writeBigUInt64BE(BigInt(900 * 1024), 2)
    header.writeUInt32BE(0x01020304, 10)
    socket.write(Buffer.concat([header, Buffer.alloc(1024, 0x41)]))
    const outcome = await Promise.race([
      ended,
      new Promise<string>((r) => setTimeout(() => r('still open'), WITHIN_MS)),
    ])
    expect(outcome, `after ${WITHIN_MS} ms`).toMatch(/^closed( \d+)?$/)
  }, 30_000)

  it('does not welcome a hello padded to 64 KiB', async () => {
    const relay = await startEdgeRelay('sqlite', {
      limits: relayLimits({ authTimeoutMs: 30_000, preHelloFrameBytesMax: 8 * 1024 }),
    })
    cleanups.push(() => relay.close())
    const client = await openClient(relay.url)
    cleanups.push(() => client.close())
    client.send({
      type: 'hello',
      protocol: PROTOCOL_VERSION,
      token: await token(),
      clientId: client.clientId,
      pad: 'x'.repeat(64 * 1024),
    })
    const answer = await client
      .next((m) => m.type === 'welcome' || m.type === 'error', WITHIN_MS)
      .then((m) => m.type)
      .catch(() => 'nothing')
    expect(answer).not.toBe('welcome')
    const { code } = await client.closed
    expect(TOO_BIG_CLOSE_CODES).toContain(code)
  }, 30_000)
})

/** A raw TCP socket after a WebSocket upgrade of `path` (no WebSocket library on our side). */
async function upgrade(port: number, path: string): Promise<Socket> {
  const socket = connect({ host: '127.0.0.1', port })
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve())
    socket.once('error', reject)
  })
  socket.write(
    [
      `GET ${path} HTTP/1.1`,
      `Host: 127.0.0.1:${port}`,
      'Upgrade: websocket',
      'Connection: Upgrade',
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
      'Sec-WebSocket-Version: 13',
      '',
      '',
    ].join('\r\n'),
  )
  await new Promise<void>((resolve, reject) => {
    let head = ''
    const onData = (d: Buffer) => {
      head += d.toString('latin1')
      if (!head.includes('\r\n\r\n')) return
      socket.off('data', onData)
      if (head.startsWith('HTTP/1.1 101')) resolve()
      else reject(new Error(`upgrade refused: ${head.split('\r\n')[0]}`))
    }
    socket.on('data', onData)
  })
  return socket
}

/** "closed" plus the close code of the relay's close frame, if it sent one. */
function describeClose(received: Buffer): string {
  if (received.length >= 4 && (received[0] as number) === 0x88) {
    return `closed ${received.readUInt16BE(2)}`
  }
  return 'closed'
}
