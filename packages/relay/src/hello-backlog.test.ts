// Goal: session.ts invariant 1, the byte half: frames that arrive while the token of a hello is
// being checked queue at most `helloBacklogBytesMax` bytes, so a socket cannot park a large
// backlog behind a hello whose check is slow; within the bound they are processed after
// `welcome`. On the commit before (6ad10b3) only frames were counted (16), not bytes. Method: a
// wire client sends its hello and, in the same turn, pings padded to 6 KiB: they reach the relay
// while it verifies the token (asynchronously), under a frame bound raised to 64.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { PROTOCOL_VERSION } from '@ledgerline/protocol'
import { SECRET, token } from './edges.test-helper.ts'
import { createRelay } from './index.ts'
import { openClient } from './wire-client.test-helper.ts'

const cleanups: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

describe('the hello backlog is bounded in bytes', () => {
  it.each([
    [8, 'welcome'],
    [12, 'closed 4400'],
  ])('%i pings of 6 KiB behind a hello: %s', async (pings, outcome) => {
    const dataDir = mkdtempSync(join(tmpdir(), 'll-backlog-'))
    const relay = await createRelay({
      port: 0,
      dataDir,
      auth: { secret: SECRET },
      logLevel: 'silent',
      limits: { helloBacklogBytesMax: 64 * 1024, helloBacklogMax: 64 },
    })
    cleanups.push(async () => {
      await relay.close()
      rmSync(dataDir, { recursive: true, force: true })
    })
    const client = await openClient(relay.url)
    cleanups.push(() => client.close())
    const tok = await token()
    client.send({
      type: 'hello',
      protocol: PROTOCOL_VERSION,
      token: tok,
      clientId: client.clientId,
    })
    // Sent in the same turn as the hello: they reach the relay while its token is checked.
    for (let i = 0; i < pings; i++) client.send({ type: 'ping', t: i, pad: 'x'.repeat(6_000) })
    const first = await client
      .next((m) => m.type === 'welcome' || m.type === 'error', 5_000)
      .catch(() => undefined)
    let seen: string
    if (first?.type === 'welcome') {
      await client.next((m) => m.type === 'pong' && m.t === pings - 1)
      seen = 'welcome'
    } else {
      seen = `closed ${(await client.closed).code}`
    }
    expect(seen).toBe(outcome)
  })
})
