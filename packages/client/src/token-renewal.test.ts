// Goal: issue 12 case 8 — token expiry does not end sessions abruptly: a session whose token is
// about to expire is renewed on the live socket (no reconnect, no ack lost, no resend), and a
// token that cannot be renewed (a token function returning the same expired JWT, or a string
// token) makes the client back off and say why, never reconnect in a hot loop.
// Method: the real client with a wire spy against the real relay (SQLite; the store plays no
// part). Renewal: tokens live 6 s and the till sells every 100 ms for 9 s, across the first
// expiry; the spy counts sockets, acks and `duplicate` results. Hot loop: hellos are counted over
// 4 s; on 3a8bfae the client reconnects every 125–250 ms (16 or more hellos), with exponential
// backoff it makes a handful.
import 'fake-indexeddb/auto'
import { describe, expect, it } from 'vitest'
import { useEdgeServers } from '../test-support/edge-relay.ts'
import type { EdgeServer } from '../test-support/edge-relay.ts'
import type { TestClientOptions } from '../test-support/setup.ts'
import { createWireSpy } from '../test-support/wire-spy.ts'
import type { WireSpy } from '../test-support/wire-spy.ts'
import type { Client } from './index.ts'

const TOKEN_LIFETIME_S = 6
const SELLING_MS = 9_000
const WINDOW_MS = 4_000
/** Hellos in WINDOW_MS with an unrenewable token: a handful, where 3a8bfae makes 16 or more. */
const HELLOS_IN_WINDOW_MAX = 8

const startEdgeServer = useEdgeServers()

describe('issue 12 case 8: tokens renewed before they expire', () => {
  it('renews a token about to expire on the live socket: one connection, no ack lost', async () => {
    const server = await start()
    const spy = createWireSpy()
    let tokens = 0
    const till = open(server, spy, {
      token: () => {
        tokens++
        return server.token({ expiresInS: TOKEN_LIFETIME_S })
      },
    })
    expect(await till.synced()).toEqual({ _tag: 'synced' })
    const ids: string[] = []
    const until = Date.now() + SELLING_MS
    while (Date.now() < until) {
      ids.push((await till.append('order/t8', 'order.line', { n: ids.length })).id)
      await new Promise((r) => setTimeout(r, 100))
    }
    expect(await till.synced()).toEqual({ _tag: 'synced' })
    expect(spy.errorKinds()).toEqual([])
    expect(spy.opened()).toBe(1)
    expect(tokens).toBeGreaterThanOrEqual(2)
    // Nothing was sent twice: every ack came back on the socket that carried its push.
    const statuses = spy.ackResults().map((r) => r.status)
    expect(statuses.filter((s) => s !== 'appended')).toEqual([])
    expect(statuses).toHaveLength(ids.length)
    expect((await server.entries('order/t8')).map((e) => e.id)).toEqual(ids)
  }, 60_000)

  it.each(['a token function returning it', 'a string token'] as const)(
    'backs off with the same expired token from %s, never reconnecting in a hot loop',
    async (source) => {
      const server = await start()
      const expired = await server.token({ expiresInS: -60 })
      const spy = createWireSpy()
      const till = open(server, spy, {
        token: source === 'a string token' ? expired : () => expired,
      })
      await till.append('order/t8', 'order.line', { n: 0 })
      const since = Date.now()
      await new Promise((r) => setTimeout(r, WINDOW_MS))
      const hellos = spy.count('sent', 'hello', since)
      expect(hellos, `hellos in ${WINDOW_MS} ms`).toBeLessThanOrEqual(HELLOS_IN_WINDOW_MAX)
      expect(hellos).toBeGreaterThanOrEqual(1)
      expect(till.status().lastError?.kind).toBe('token_expired')
      expect(till.status().outboxEntries).toBe(1)
    },
    30_000,
  )
})

function start(): Promise<EdgeServer> {
  return startEdgeServer('sqlite')
}

function open(server: EdgeServer, spy: WireSpy, options: Pick<TestClientOptions, 'token'>): Client {
  return server.open({ WebSocket: spy.WebSocket, ...options })
}
