/**
 * The `--dev` store hub's "store internet" switch: `POST /dev/upstream {"connected": false}`
 * cuts the hub's link to head office and keeps it cut (no redial) until `{"connected": true}`;
 * `GET /dev/upstream` says where the switch is. The demo uses it to show a store that lost its
 * internet; a relay without `--dev`, or one that is not a hub, has no such route (404).
 *
 * Terms: `<data>/dev-upstream-cut` exists while the switch is off. Like a cable pulled out of
 * the store's router, the cut outlives a restart of the hub (a hub SIGKILLed mid-outage comes
 * back still cut off).
 *
 * Invariants:
 * 1. The route exists only on a relay that is both `--dev` and a hub (`relay.ts`).
 * 2. The switch file is read, and the link held, before the link dials for the first time:
 *    `applyDevUpstreamSwitch` runs in the same turn as `createHub`.
 * 3. A body that is not `{"connected": boolean}`, or is larger than
 *    `DEV_UPSTREAM_BODY_BYTES_MAX`, is answered 400 with a code and changes nothing.
 * 4. The answer of a POST is the switch's new position; it is on disk before the answer.
 */
import { existsSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { UpstreamLink } from './upstream-link.ts'
import { DEV_UPSTREAM_BODY_BYTES_MAX } from '../limits.ts'

/** The file inside the hub's data directory that says the link is cut. */
export const DEV_UPSTREAM_CUT_FILE = 'dev-upstream-cut'

/** What `GET` and `POST /dev/upstream` answer. */
export interface DevUpstreamState {
  /** The switch: false while the store's internet is cut by hand. */
  readonly connected: boolean
  /** Whether the link is up right now (head office welcomed it). */
  readonly linkUp: boolean
  /** Where the hub forwards to (the demo's registers use it as their last URL). */
  readonly upstream: readonly string[]
}

/** Invariant 2: holds `link` when the switch file says the store's internet is cut. */
export function applyDevUpstreamSwitch(dataDir: string, link: UpstreamLink): void {
  if (existsSync(join(dataDir, DEV_UPSTREAM_CUT_FILE))) link.hold(true)
}

/**
 * @example
 * router({ devUpstream: createDevUpstreamRoute({ dataDir, link, upstream: ['ws://hq/sync'] }) })
 */
export function createDevUpstreamRoute(options: {
  readonly dataDir: string
  readonly link: UpstreamLink
  readonly upstream: readonly string[]
}): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  const file = join(options.dataDir, DEV_UPSTREAM_CUT_FILE)
  const state = (): DevUpstreamState => ({
    connected: !existsSync(file),
    linkUp: options.link.state().connected,
    upstream: options.upstream,
  })
  return async (req, res) => {
    if (req.method === 'GET') {
      answer(res, 200, state())
      return
    }
    if (req.method !== 'POST') {
      answer(res, 405, { code: 'method', error: 'GET or POST only' })
      return
    }
    const body = await readBody(req)
    if (body === undefined) {
      answer(res, 400, {
        code: 'too_large',
        error: `a body of at most ${DEV_UPSTREAM_BODY_BYTES_MAX} bytes`,
      })
      return
    }
    const connected = parseSwitch(body)
    if (connected === undefined) {
      answer(res, 400, { code: 'invalid', error: 'the body must be {"connected": true|false}' })
      return
    }
    if (connected) rmSync(file, { force: true })
    else writeFileSync(file, `cut by POST /dev/upstream at ${new Date().toISOString()}\n`)
    options.link.hold(!connected)
    answer(res, 200, state())
  }
}

/** `{"connected": boolean}` → the boolean; anything else → undefined. */
export function parseSwitch(body: string): boolean | undefined {
  try {
    const value = JSON.parse(body) as unknown
    if (typeof value !== 'object' || value === null) return undefined
    const connected = (value as { connected?: unknown }).connected
    return typeof connected === 'boolean' ? connected : undefined
  } catch {
    return undefined
  }
}

/** The body as text, or undefined past the limit (the rest is not read). */
function readBody(req: IncomingMessage): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let bytes = 0
    req.on('data', (chunk: Buffer) => {
      bytes += chunk.length
      if (bytes > DEV_UPSTREAM_BODY_BYTES_MAX) {
        req.removeAllListeners('data')
        req.resume()
        resolve(undefined)
        return
      }
      chunks.push(chunk)
    })
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')))
    req.on('error', reject)
  })
}

function answer(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' })
  res.end(JSON.stringify(body))
}
