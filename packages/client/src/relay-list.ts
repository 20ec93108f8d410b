/**
 * The relays a client may sync through, in order of preference (`ClientOptions.url`: a store
 * hub, a backup hub, head office), and the probes that bring it back to an earlier one.
 *
 *   connect ─► url() ─► not welcomed ─► failed(): the next url (after the last: the first)
 *   welcomed on url k > 0 ─► probe urls 0..k-1 after PROBE_MS_MIN (doubling to PROBE_MS_MAX)
 *      └─ one welcomes the probe ─► answered(j): the connection moves to url j
 *
 * Terms: a *probe* is a socket that says hello and closes as soon as it is welcomed (or not);
 * it pushes and subscribes nothing. A relay *answers* when it welcomes a hello.
 *
 * Invariants:
 * 1. The list is never empty and holds each url once; the current index is always in it.
 * 2. A welcomed socket's url stays current: after it is lost the same relay is tried first.
 * 3. At most one probe socket is open at a time; each is closed within PROBE_TIMEOUT_MS, and
 *    probes run only while welcomed on a later url (`start`/`stop`).
 * 4. Moving between relays never touches the outbox: records go only on head office's result.
 */
import type { Message } from '@ledgerline/protocol'
import { decodeMessage, encodeMessage } from '@ledgerline/protocol'
import { ClientError } from './errors.ts'
import { PROBE_MS_MAX, PROBE_MS_MIN, PROBE_TIMEOUT_MS } from './limits.ts'
import type { Scheduler, TimerHandle } from './scheduler.ts'
import type { WebSocketConstructor, WebSocketLike } from './transport.ts'
import { closeQuietly, frameBytes } from './transport.ts'

export interface RelayList {
  /** The url to connect to now. */
  url(): string
  index(): number
  size(): number
  /** The attempt on the current url ended before a welcome: the next url is tried next. */
  failed(): void
  /** Move to url `index` (a probe found it answering). */
  moveTo(index: number): void
}

/**
 * @example
 * const relays = createRelayList(['ws://hub.local/sync', 'wss://hq.example.com/sync'])
 * relays.url() // 'ws://hub.local/sync'
 */
export function createRelayList(url: string | readonly string[]): RelayList {
  const urls = typeof url === 'string' ? [url] : [...url]
  if (urls.length === 0 || urls.some((u) => typeof u !== 'string' || u === '')) {
    throw new ClientError('invalid', 'url must be a relay url or a non-empty list of them')
  }
  if (new Set(urls).size !== urls.length) {
    throw new ClientError('invalid', 'url lists a relay more than once')
  }
  let at = 0
  return {
    url: () => urls[at] as string,
    index: () => at,
    size: () => urls.length,
    failed() {
      at = (at + 1) % urls.length
    },
    moveTo(index) {
      if (index >= 0 && index < urls.length) at = index
    },
  }
}

export interface RelayProbeOptions {
  readonly urls: readonly string[]
  readonly WebSocket: WebSocketConstructor
  /** The hello a probe says (the connection's token and clientId). */
  readonly hello: () => Promise<Message>
  readonly scheduler: Scheduler
  readonly random: () => number
  /** Url `index` (earlier than the current one) welcomed a probe. */
  readonly answered: (index: number) => void
}

export interface RelayProbe {
  /** Welcomed on url `current`: probe the earlier ones (invariant 3); a no-op for url 0. */
  start(current: number): void
  stop(): void
}

/**
 * @example
 * const probe = createRelayProbe({ urls, WebSocket, hello, scheduler, random, answered })
 * probe.start(2)
 */
export function createRelayProbe(options: RelayProbeOptions): RelayProbe {
  const { scheduler } = options
  let timer: TimerHandle | undefined
  let round = 0
  /** Raised by every start and stop, so a probe of an older round changes nothing. */
  let epoch = 0
  let open: WebSocketLike | undefined

  function schedule(current: number, mine: number): void {
    const ceiling = Math.min(PROBE_MS_MAX, PROBE_MS_MIN * 2 ** Math.min(round, 16))
    const delay = ceiling / 2 + (options.random() * ceiling) / 2
    round++
    timer = scheduler.setTimeout(() => {
      timer = undefined
      void probeEarlier(current, mine)
    }, delay)
  }

  async function probeEarlier(current: number, mine: number): Promise<void> {
    for (let j = 0; j < current; j++) {
      if (epoch !== mine) return
      const welcomed = await probeOnce(options.urls[j] as string)
      if (epoch !== mine) return
      if (welcomed) {
        options.answered(j)
        return
      }
    }
    if (epoch === mine) schedule(current, mine)
  }

  async function probeOnce(url: string): Promise<boolean> {
    let hello: Message
    try {
      hello = await options.hello()
    } catch {
      return false
    }
    return new Promise<boolean>((resolve) => {
      let ws: WebSocketLike
      try {
        ws = new options.WebSocket(url)
        ws.binaryType = 'arraybuffer'
      } catch {
        resolve(false)
        return
      }
      open = ws
      let done = false
      const finish = (welcomed: boolean) => {
        if (done) return
        done = true
        scheduler.clearTimeout(deadline)
        if (open === ws) open = undefined
        closeQuietly(ws)
        resolve(welcomed)
      }
      const deadline = scheduler.setTimeout(() => finish(false), PROBE_TIMEOUT_MS)
      ws.addEventListener('open', () => ws.send(encodeMessage(hello)))
      ws.addEventListener('message', (event) => {
        try {
          finish(decodeMessage(frameBytes(event.data)).type === 'welcome')
        } catch {
          finish(false)
        }
      })
      ws.addEventListener('close', () => finish(false))
      ws.addEventListener('error', () => finish(false))
    })
  }

  function stop(): void {
    epoch++
    scheduler.clearTimeout(timer)
    timer = undefined
    if (open !== undefined) closeQuietly(open)
    open = undefined
  }

  return {
    start(current) {
      stop()
      round = 0
      if (current > 0) schedule(current, epoch)
    },
    stop,
  }
}
