/**
 * The impostor: a user of the same tenant with a valid token of its own, speaking the protocol
 * by hand. It reads the log like any reader (entry ids name their clientIds), then says `hello`
 * with a till's clientId, reads that till's high-water mark from `welcome`, and pushes entries
 * of its own under the till's next clientSeqs.
 *
 *   subscribe ─► learn clientIds from pages ─► hello(victim's clientId) ─► welcome(high)
 *             ─► push entryId(victim, high + 1 …) ─► close
 *
 * Invariants:
 * 1. It never sends anything malformed: every frame is one a real client could send, so what it
 *    reaches is the relay's and the log's decision, not a codec's refusal.
 * 2. What it makes is recorded as the impostor's (history `made`, `impostorOps`): those entries
 *    are nobody's promise, but they must not displace one.
 */
import { createHlcClock, entryId, SERVER_CLIENT_ID } from '@ledgerline/core'
import type { Entry } from '@ledgerline/core'
import type { WebSocketLike } from '@ledgerline/client'
import type { Message } from '@ledgerline/protocol'
import { decodeMessage, encodeMessage, PROTOCOL_VERSION } from '@ledgerline/protocol'
import type { Prng, SimScheduler } from '@ledgerline/testkit'
import type { SimHistory } from './history.ts'
import type { Life } from './sim-loop.ts'
import type { Wire } from './wire.ts'

export interface ImpostorOptions {
  readonly sched: SimScheduler
  readonly wire: Wire
  readonly rng: Prng
  readonly life: Life
  readonly history: SimHistory
  readonly tenant: string
  /** The impostor's own token (its own subject). */
  readonly token: () => string
  readonly now: () => number
}

export interface Impostor {
  /** One attempt: read, pick a victim, push under its clientId. */
  strike(): void
  readonly stats: { strikes: number; pushed: number; welcomed: number; refusedHello: number }
}

/**
 * @example
 * const impostor = createImpostor({ sched, wire, rng, life, history, tenant, token, now })
 * sched.at(t, 'impostor', () => impostor.strike())
 */
export function createImpostor(options: ImpostorOptions): Impostor {
  const { sched, wire, rng, history } = options
  const Socket = wire.socketClass('impostor', options.life)
  const seen = new Set<string>()
  const stats = { strikes: 0, pushed: 0, welcomed: 0, refusedHello: 0 }
  let made = 0

  const connect = (clientId: string, onMessage: (ws: WebSocketLike, m: Message) => void) => {
    const ws = new Socket('wss://relay.sim/sync')
    ws.binaryType = 'arraybuffer'
    ws.addEventListener('open', () => {
      send(ws, { type: 'hello', protocol: PROTOCOL_VERSION, token: options.token(), clientId })
    })
    ws.addEventListener('message', (event) => {
      const m = decodeMessage(new Uint8Array(event.data as ArrayBuffer))
      if (m.type === 'error' && m.kind !== 'token_expired') stats.refusedHello++
      onMessage(ws, m)
    })
    // Gone for good after a while, whatever happened.
    options.life.after(60_000, 'impostor hangs up', () => ws.close())
    return ws
  }

  const read = (then: () => void) => {
    const own = randomClientId()
    connect(own, (ws, m) => {
      if (m.type === 'welcome') {
        send(ws, { type: 'subscribe', sub: 1, scope: ['*'], cursors: {}, credit: 16 })
      } else if (m.type === 'entries') {
        for (const e of m.entries) if (e.clientId !== SERVER_CLIENT_ID) seen.add(e.clientId)
        if (m.live) {
          ws.close()
          then()
        } else {
          send(ws, { type: 'credit', sub: 1, pages: 1 })
        }
      }
    })
  }

  const pushAs = (victim: string) => {
    connect(victim, (ws, m) => {
      if (m.type !== 'welcome') return
      stats.welcomed++
      const count = rng.int(1, 3)
      const clock = createHlcClock(victim, options.now)
      const entries: Entry[] = []
      for (let i = 1; i <= count; i++) {
        const seq = m.clientSeqHigh + i
        const op = `impostor:${++made}`
        const entry: Entry = {
          id: entryId(victim, seq),
          tenant: options.tenant,
          entity: `order/imp-${made}`,
          kind: 'order.line',
          data: { amount: rng.int(1, 9), op },
          intent: 'fact',
          clientId: victim,
          clientSeq: seq,
          hlc: clock.tick(),
          occurredAt: options.now(),
        }
        entries.push(entry)
        history.impostorOps.add(op)
        history.madeBy('impostor', entry)
      }
      stats.pushed += entries.length
      sched.record(`impostor pushes ${count} as ${victim.slice(0, 6)}`)
      send(ws, { type: 'push', batch: 1, entries })
    })
  }

  const randomClientId = () => {
    const bytes = new Uint8Array(16)
    rng.fill(bytes)
    bytes[0] = (bytes[0] as number) | 1
    return [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('')
  }

  return {
    strike() {
      stats.strikes++
      read(() => {
        const victims = [...seen].sort()
        if (victims.length === 0) return
        pushAs(rng.pick(victims))
      })
    },
    stats,
  }
}

function send(ws: WebSocketLike, message: Message): void {
  if (ws.readyState === 1) ws.send(encodeMessage(message))
}
