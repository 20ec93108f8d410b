// Goal: a list of relays (hub, backup hub, head office): a relay that does not welcome gives
// way to the next, a welcomed one is tried again first, earlier relays are probed while on a
// later one and the connection moves back to the first that welcomes a probe; a bad list is
// an `invalid` ClientError at once.
// Method: the in-memory transport of testkit with scripted relay ends, a manual scheduler.
import { afterEach, describe, expect, it } from 'vitest'
import { createMemoryTransport } from '@ledgerline/testkit'
import type { ClientMessage } from '@ledgerline/protocol'
import { decodeMessage, encodeMessage } from '@ledgerline/protocol'
import { createManualScheduler, settle } from '../test-support/manual-scheduler.ts'
import { welcomeMessage } from '../test-support/messages.ts'
import type { Connection } from './connection.ts'
import { createConnection } from './connection.ts'
import { PROBE_MS_MAX, PROBE_TIMEOUT_MS, RECONNECT_MS_MIN } from './limits.ts'
import { createRelayList } from './relay-list.ts'

const HUB = 'memory://hub/sync'
const BACKUP = 'memory://backup/sync'
const HQ = 'memory://hq/sync'
let connection: Connection | undefined
afterEach(() => connection?.stop())

function setup(urls: readonly string[]) {
  const transport = createMemoryTransport({ defer: (fn) => void setImmediate(fn) })
  const scheduler = createManualScheduler(1_000_000)
  const hellos: string[] = []
  const stops = new Map<string, () => void>()
  /** Starts a relay at `url` that welcomes every hello (`welcomes: false`: closes instead). */
  const relay = (url: string, welcomes = true) => {
    stops.get(url)?.()
    stops.set(
      url,
      transport.listen(url, (socket) => {
        socket.onMessage((bytes) => {
          const m = decodeMessage(bytes) as ClientMessage
          // Pings answered, or the connection drops a silent socket (SILENCE_MS_MAX).
          if (m.type === 'ping') socket.send(encodeMessage({ type: 'pong', t: m.t }))
          if (m.type !== 'hello') return
          hellos.push(url)
          if (welcomes) {
            socket.send(encodeMessage(welcomeMessage({ serverTime: 1, expiresAt: 2 })))
            return
          }
          // As a hub that never reached head office: `overloaded`, with its backoff floor.
          socket.send(
            encodeMessage({
              type: 'error',
              kind: 'overloaded',
              message: 'not yet connected to head office',
              backoffMsMin: 5_000,
            }),
          )
          socket.close(4503, 'overloaded')
        })
      }),
    )
  }
  let lost = 0
  connection = createConnection({
    url: urls,
    WebSocket: transport.WebSocket,
    token: async () => 'token-1',
    invalidateToken: () => {},
    clientId: async () => 'a'.repeat(32),
    now: scheduler.now,
    random: () => 0.5,
    scheduler,
    events: {
      message: () => {},
      lost: () => lost++,
      failed: () => {},
      changed: () => {},
      taken: () => {},
    },
  })
  return {
    connection,
    scheduler,
    relay,
    hellos,
    lost: () => lost,
    stop: (u: string) => stops.get(u)?.(),
  }
}

async function advance(scheduler: ReturnType<typeof createManualScheduler>, ms: number) {
  for (let t = 0; t < ms; t += 250) {
    await scheduler.advance(250)
    await settle()
  }
}

describe('relay list', () => {
  it('refuses an empty list or a relay named twice', () => {
    expect(() => createRelayList([])).toThrow(expect.objectContaining({ kind: 'invalid' }))
    expect(() => createRelayList([HUB, HUB])).toThrow(/more than once/)
    const list = createRelayList([HUB, BACKUP, HQ])
    list.failed()
    list.failed()
    expect(list.url()).toBe(HQ)
    list.failed()
    expect(list.url()).toBe(HUB)
  })

  it('moves on from a relay that does not welcome, and tries a welcomed one again first', async () => {
    const t = setup([HUB, BACKUP, HQ])
    t.relay(BACKUP, false) // a hub that never reached head office refuses hellos
    t.relay(HQ)
    t.connection.start()
    // The refusing hub's floor is its own: the next relay is tried at the first round's pace.
    await advance(t.scheduler, 4 * RECONNECT_MS_MIN)
    expect(t.connection.welcomed()).toBe(true)
    expect(t.connection.url()).toBe(HQ)
    expect(t.hellos).toEqual([BACKUP, HQ])
    // Lost after a welcome: head office again first, not the list's start.
    t.connection.offline()
    await advance(t.scheduler, 2 * RECONNECT_MS_MIN)
    expect(t.connection.url()).toBe(HQ)
    expect(t.hellos).toEqual([BACKUP, HQ, HQ])
  })

  it('probes earlier relays while on a later one and moves back to the first that answers', async () => {
    const t = setup([HUB, BACKUP, HQ])
    t.relay(HQ)
    t.connection.start()
    await advance(t.scheduler, 4 * RECONNECT_MS_MIN)
    expect(t.connection.url()).toBe(HQ)
    const lostBefore = t.lost()
    // Nothing answers before it: the probes back off and the connection stays.
    await advance(t.scheduler, PROBE_MS_MAX)
    expect(t.connection.url()).toBe(HQ)
    expect(t.lost()).toBe(lostBefore)
    // The backup hub answers first: the connection moves there…
    t.relay(BACKUP)
    await advance(t.scheduler, PROBE_MS_MAX + PROBE_TIMEOUT_MS)
    expect(t.connection.url()).toBe(BACKUP)
    expect(t.connection.welcomed()).toBe(true)
    expect(t.lost()).toBe(lostBefore + 1)
    // …and on to the hub when it is back.
    t.relay(HUB)
    await advance(t.scheduler, PROBE_MS_MAX + PROBE_TIMEOUT_MS)
    expect(t.connection.url()).toBe(HUB)
    expect(t.connection.welcomed()).toBe(true)
    // On the first relay nothing is probed any more.
    const hellos = t.hellos.length
    await advance(t.scheduler, 2 * PROBE_MS_MAX)
    expect(t.hellos.length).toBe(hellos)
  })
})
