/**
 * HTTP and WebSocket-upgrade routing of the relay, in one place: `/sync` (the sync endpoint),
 * extra upgrade routes by path prefix (e.g. `/yjs/`), `/healthz`, `/readyz`, `/metrics`, `/dev/token` (dev
 * only), `/dev/upstream` (a dev store hub only) and static files.
 *
 * Invariants:
 * 1. The Origin check runs before any upgrade is handed on: a browser Origin not on the list is
 *    answered 403 and the socket destroyed. A request without Origin (a non-browser client)
 *    passes and relies on its token. With an empty list in dev mode, same-origin passes.
 * 2. Origins are compared as URL origins (scheme, lowercased host, port), exactly: no suffix,
 *    substring or trailing-dot matches, and `null` never passes.
 * 3. While the relay shuts down, upgrades get 503.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'
import type { Logger } from 'pino'
import type { TokenVerifier } from './auth.ts'
import type { LogStore } from './log-store.ts'

/** What an extra upgrade route gets besides the request: the log, the token check, a logger. */
export interface UpgradeRouteContext {
  readonly store: LogStore
  readonly verify: TokenVerifier
  readonly logger: Logger
}

/** An extra WebSocket endpoint; it owns the socket once called (Origin already checked). */
export type UpgradeRoute = (
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  context: UpgradeRouteContext,
) => void

export type HttpHandler = (req: IncomingMessage, res: ServerResponse) => Promise<void> | void

export interface RouterOptions {
  readonly allowedOrigins: readonly string[]
  readonly dev: boolean
  readonly logger: Logger
  readonly isClosing: () => boolean
  readonly sync: (req: IncomingMessage, socket: Duplex, head: Buffer) => void
  readonly routes: Readonly<Record<string, UpgradeRoute>>
  readonly routeContext: UpgradeRouteContext
  readonly healthz: HttpHandler
  /** Readiness for a load balancer or an orchestrator: 503 while the log cannot serve. */
  readonly readyz: HttpHandler
  readonly metrics: HttpHandler
  readonly devToken?: HttpHandler | undefined
  /** A `--dev` store hub's switch of its link to head office (`hub/dev-upstream.ts`). */
  readonly devUpstream?: HttpHandler | undefined
  /** Resolves false when it did not answer. */
  readonly static?: ((req: IncomingMessage, res: ServerResponse) => Promise<boolean>) | undefined
}

export interface Router {
  request(req: IncomingMessage, res: ServerResponse): void
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void
}

/** The path that a WebSocket client connects to for sync. */
export const SYNC_PATH = '/sync'

/**
 * @example
 * const router = createRouter({ allowedOrigins: [], dev: false, … })
 * server.on('request', router.request).on('upgrade', router.upgrade)
 */
export function createRouter(options: RouterOptions): Router {
  const allowed = new Set(options.allowedOrigins.map(normalizeOrigin).filter(isString))
  const prefixes = Object.keys(options.routes).sort((a, b) => b.length - a.length)
  return {
    request(req, res) {
      void handle(req, res).catch((error: unknown) => {
        options.logger.error({ event: 'internal_error', err: error }, 'HTTP request failed')
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' })
        res.end('internal error')
      })
    },
    upgrade(req, socket, head) {
      socket.on('error', () => socket.destroy())
      const origin = req.headers.origin
      if (!isOriginAllowed(origin, req.headers.host, allowed, options.dev)) {
        options.logger.warn(
          { event: 'origin_refused', origin },
          'refused an upgrade from an origin not on the list',
        )
        refuse(socket, 403, 'Forbidden')
        return
      }
      if (options.isClosing()) {
        refuse(socket, 503, 'Service Unavailable')
        return
      }
      const path = pathOf(req)
      if (path === SYNC_PATH) {
        options.sync(req, socket, head)
        return
      }
      const prefix = prefixes.find((p) => path.startsWith(p))
      const route = prefix === undefined ? undefined : options.routes[prefix]
      if (route === undefined) {
        refuse(socket, 404, 'Not Found')
        return
      }
      route(req, socket, head, options.routeContext)
    },
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = pathOf(req)
    if (path === '/healthz') return await options.healthz(req, res)
    if (path === '/readyz') return await options.readyz(req, res)
    if (path === '/metrics') return await options.metrics(req, res)
    if (path === '/dev/token' && options.devToken !== undefined) {
      return await options.devToken(req, res)
    }
    if (path === '/dev/upstream' && options.devUpstream !== undefined) {
      return await options.devUpstream(req, res)
    }
    if (options.static !== undefined && (await options.static(req, res))) return
    res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' })
    res.end('not found')
  }
}

/**
 * True when a browser with `origin` may open a socket (invariants 1 and 2).
 *
 * @example
 * isOriginAllowed('https://pos.example.com', 'relay:8787', new Set(['https://pos.example.com']), false) // true
 */
export function isOriginAllowed(
  origin: string | undefined,
  host: string | undefined,
  allowed: ReadonlySet<string>,
  dev: boolean,
): boolean {
  if (origin === undefined) return true
  const normalized = normalizeOrigin(origin)
  if (normalized === undefined) return false
  if (allowed.has(normalized)) return true
  if (allowed.size === 0 && dev && host !== undefined) {
    return new URL(normalized).host === host.toLowerCase()
  }
  return false
}

function normalizeOrigin(origin: string): string | undefined {
  try {
    const url = new URL(origin)
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return undefined
    if (url.origin === 'null') return undefined
    return url.origin
  } catch {
    return undefined
  }
}

function isString(value: string | undefined): value is string {
  return value !== undefined
}

function pathOf(req: IncomingMessage): string {
  return (req.url ?? '/').split('?')[0] as string
}

function refuse(socket: Duplex, status: number, text: string): void {
  // As `ws` aborts a handshake: answer, then destroy once the answer is flushed.
  socket.once('finish', () => socket.destroy())
  socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`)
}
