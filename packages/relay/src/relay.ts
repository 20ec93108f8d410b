/**
 * `createRelay`: the relay process in one object. An HTTP server (health, metrics, dev tokens,
 * static files), the `ws` sync endpoint behind it, the server log, and graceful shutdown.
 *
 * Invariants:
 * 1. `ws` runs with `noServer` behind the router (Origin checked before the upgrade),
 *    `perMessageDeflate` off and `maxPayload = FRAME_BYTES_MAX`.
 * 2. Every commit of the log (from any connection, or another relay on the same PostgreSQL log)
 *    is told to the shared tails (`fanout-tail.ts`), then to every session, which reads what its
 *    subscriptions may see (live ones through the tails). On a store hub, a head office log change
 *    that empties the mirror resets the tails first (`fanout-tail.ts` invariant 5).
 * 3. `close()` stops accepting, waits for appends in flight and acks them, closes every socket
 *    with 1001, then closes the log it opened (a log passed in as `store` stays open for its
 *    owner).
 * 4. Every relay serves CRDT entities fully, on its own SQLite log (`dataDir`) or on a store
 *    passed in (PostgreSQL): with a schema the log is wrapped by `withCrdtSnapshots`
 *    (`crdt-snapshots.ts`), and the y-websocket endpoint answers under `/yjs/` with the relay's
 *    own token check. A `routes` entry for `/yjs/` replaces that endpoint.
 * 5. A relay on its own data directory holds its lock (`data-dir-lock.ts`) from before the log
 *    opens until after it closed: a second relay on the same directory refuses to start.
 * 6. The configuration is checked before anything opens (`relay-config.ts`): a bad origin, a
 *    short secret or contradicting limits reject with `RelayError('config')`.
 * 7. Every WebSocket upgrade, `/sync` or `/yjs`, takes a socket seat of `relay-gates.ts` before
 *    `ws` sees it (503 past `connectionsMax`) and gives it back when the socket closes.
 * 8. Every push of every session goes through one bounded, fair commit queue
 *    (`commit-queue.ts`) before it reaches the log.
 * 9. Head office with a schema, on a log that keeps ledger snapshots (SQLite, PostgreSQL),
 *    snapshots ledger entities in the background (`ledger-snapshots.ts`) and answers
 *    `subscribe.bootstrap` and `fetch` (`welcome.snapshots`); a store hub or a relay without a
 *    schema does neither. `snapshotWalk` also walks the whole log once at start.
 * 10. Before it listens (so before `/healthz` answers) the relay runs one push frame through
 *    the decoder and the session's push path to an ack on a queue and a store of its own
 *    (`warm-up.ts`), and a SQLite log it opens has rehearsed one append, the writer thread's
 *    first COMMIT included (`sqlite-store.ts` invariant 11): the first push after a restart
 *    does not pay alone for the first run of that code.
 */
import { randomBytes } from 'node:crypto'
import { mkdirSync } from 'node:fs'
import { createServer } from 'node:http'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Duplex } from 'node:stream'
import { join } from 'node:path'
import type { Logger } from 'pino'
import { WebSocketServer } from 'ws'
import { checkTenant } from '@ledgerline/core'
import type { Schema } from '@ledgerline/core'
import { FRAME_BYTES_MAX } from '@ledgerline/protocol'
import { createTokenVerifier, signToken } from './auth.ts'
import type { AuthOptions } from './auth.ts'
import { createFanoutTails } from './fanout-tail.ts'
import { createRouter } from './http-routes.ts'
import type { UpgradeRoute } from './http-routes.ts'
import { DEV_TOKEN_LIFETIME_S, RELAY_LIMITS_DEFAULT } from './limits.ts'
import type { RelayLimits } from './limits.ts'
import type { LogStore } from './log-store.ts'
import { createRelayMetrics } from './metrics.ts'
import { RelayError } from './relay-error.ts'
import { createCommitQueue } from './commit-queue.ts'
import { checkRelayConfig } from './relay-config.ts'
import { createRelayGates } from './relay-gates.ts'
import type { Seat } from './relay-gates.ts'
import { applyDevUpstreamSwitch, createDevUpstreamRoute } from './hub/dev-upstream.ts'
import { createHub } from './hub/hub.ts'
import type { Hub, UpstreamOptions } from './hub/hub.ts'
import { createSession } from './session.ts'
import { NODE_TIMERS } from './timers.ts'
import type { RelayTimers } from './timers.ts'
import type { Session } from './session.ts'
import { lockDataDir } from './data-dir-lock.ts'
import type { DataDirLock } from './data-dir-lock.ts'
import { createSqliteStore } from './sqlite-store.ts'
import type { SqliteStoreOptions, SqliteWriterKind } from './sqlite-store.ts'
import { createStaticHandler } from './static-files.ts'
import { createHealthHandlers, json } from './relay-health.ts'
import { createRelayLogger, RELAY_VERSION } from './relay-log.ts'
import { withStoreHealth } from './store-health.ts'
import { createLedgerSnapshotter, withLedgerSnapshots } from './ledger-snapshots.ts'
import type { LedgerSnapshotter } from './ledger-snapshots.ts'
import { hasLedgerSnapshots } from '@ledgerline/log'
import { withCrdtSnapshots } from './crdt-snapshots.ts'
import { createYjsEndpoint, YJS_PATH_PREFIX } from './yjs-endpoint.ts'
import { warmPushPath } from './warm-up.ts'
import { refuseUpgrade } from './yjs-wire.ts'
import type { YjsEndpoint } from './yjs-endpoint.ts'

export interface RelayOptions {
  /** Interface to listen on; default `127.0.0.1`. */
  readonly host?: string | undefined
  /** Port; 0 (the default) picks a free one. The CLI defaults to 8787. */
  readonly port?: number | undefined
  /** Directory of the SQLite log (`<dataDir>/log.sqlite`); or pass `store`. */
  readonly dataDir?: string | undefined
  /** An open log (tests, PostgreSQL); the relay does not close it. */
  readonly store?: LogStore | undefined
  /**
   * What `/healthz` and the logs call a `store` passed in (`postgres`, say); `sqlite` for
   * `dataDir`, `custom` when not given.
   */
  readonly storeKind?: string | undefined
  /**
   * Entity types: the log decides with them (`dataDir`; a store passed in was opened with its
   * own), and CRDT types get snapshots and `/yjs/` (either way). Absent makes a plain log.
   */
  readonly schema?: Schema | undefined
  /** Partition count of a new SQLite log; default 16. */
  readonly partitions?: number | undefined
  /**
   * Where the SQLite log of `dataDir` runs its commits (`SqliteStoreOptions.writer`); default
   * `SQLITE_WRITER_DEFAULT`.
   */
  readonly sqliteWriter?: SqliteWriterKind | undefined
  /**
   * Told when the SQLite log of `dataDir` fails for good (its writer thread died), after the
   * relay logged `store_failed`: the CLI exits. Appends fail from then on.
   */
  readonly onStoreFailed?: ((error: RelayError) => void) | undefined
  /** Test-only hooks of the SQLite writer thread (`SqliteStoreOptions.writerThread`). */
  readonly sqliteWriterThread?: SqliteStoreOptions['writerThread'] | undefined
  readonly auth: AuthOptions
  /** Browser Origins allowed to connect; clients that send no Origin rely on their token. */
  readonly allowedOrigins?: readonly string[] | undefined
  /**
   * Enables `GET /dev/token` (`role=hub` adds a forward grant: a store hub's token), on a hub
   * also `/dev/upstream` (cut and restore the link to head office), and makes a secret when
   * auth has none. Not for production.
   */
  readonly dev?: boolean | undefined
  /** Serve static files (the demo) at `/`. */
  readonly staticDir?: string | undefined
  readonly limits?: Partial<RelayLimits> | undefined
  /** pino level; default `warn`. */
  readonly logLevel?: string | undefined
  /** A logger to use instead of making one (`logLevel` is then ignored). */
  readonly logger?: Logger | undefined
  /**
   * Clock and timers of the sessions and the heartbeat; Node's by default (`timers.ts`), so a
   * simulation can drive them.
   */
  readonly timers?: RelayTimers | undefined
  /**
   * Run as a store hub in front of head office (`hub/hub.ts`): needs `dataDir` (the hub keeps
   * its mirror and store queue in `<dataDir>/hub.sqlite`), takes no `store`.
   */
  readonly upstream?: UpstreamOptions | undefined
  /** Extra WebSocket endpoints by path prefix, e.g. `{ '/yjs/': handler }`. */
  readonly routes?: Readonly<Record<string, UpgradeRoute>> | undefined
  /**
   * Walk every entity once at start and snapshot those past their snapshot (a log written
   * before ledger snapshots); in the background, after the relay listens. Off by default.
   */
  readonly snapshotWalk?: boolean | undefined
}

export interface Relay {
  /** `ws://<host>:<port>/sync` */
  readonly url: string
  /** `http://<host>:<port>` */
  readonly httpUrl: string
  readonly port: number
  readonly store: LogStore
  /** `sqlite`, or the `storeKind` of a store passed in. */
  readonly storeKind: string
  /** The secret tokens are checked with, when auth uses one (dev mode may have made it). */
  readonly secret: string | undefined
  /** The ledger snapshot pass (invariant 9); absent when the relay keeps no snapshots. */
  readonly ledgerSnapshots?: LedgerSnapshotter | undefined
  /** Graceful shutdown; see invariant 3. */
  close(): Promise<void>
}

/**
 * Starts a relay.
 *
 * @example
 * const relay = await createRelay({ port: 0, dataDir: 'data', auth: { secret } })
 * const token = await signToken({ secret, tenant: 'acme', sub: 'till-1', read: ['*'], write: ['*'] })
 * // connect a client to relay.url, say hello with the token …
 * await relay.close()
 */
export async function createRelay(options: RelayOptions): Promise<Relay> {
  const limits: RelayLimits = { ...RELAY_LIMITS_DEFAULT, ...options.limits }
  checkRelayConfig({
    allowedOrigins: options.allowedOrigins ?? [],
    auth: options.auth,
    limits,
  })
  const logger = options.logger ?? createRelayLogger({ level: options.logLevel ?? 'warn' })
  const dev = options.dev === true
  const hasKey = [options.auth.secret, options.auth.publicKeyFile, options.auth.jwksFile].some(
    (k) => k !== undefined && k !== '',
  )
  const secret =
    options.auth.secret !== undefined && options.auth.secret !== ''
      ? options.auth.secret
      : dev && !hasKey
        ? randomBytes(32).toString('base64url')
        : undefined
  const auth: AuthOptions = secret === undefined ? options.auth : { ...options.auth, secret }
  const verify = createTokenVerifier(auth, limits.tokenClockToleranceS)
  if (dev) {
    logger.warn(
      { event: 'dev_mode' },
      '--dev is on: anyone can get a token at /dev/token. NOT FOR PRODUCTION.',
    )
  }

  let ownsStore = false
  let base: LogStore
  let lock: DataDirLock | undefined
  let hub: Hub | undefined
  if (options.upstream !== undefined) {
    if (options.dataDir === undefined || options.store !== undefined) {
      throw new RelayError('config', 'a store hub (upstream) needs dataDir and no store')
    }
    mkdirSync(options.dataDir, { recursive: true })
    lock = lockDataDir(options.dataDir)
    try {
      hub = createHub({ dataDir: options.dataDir, upstream: options.upstream, logger })
      // In the same turn: the link has not dialled yet (dev-upstream.ts, invariant 2).
      if (dev) applyDevUpstreamSwitch(options.dataDir, hub.link)
    } catch (error) {
      lock.release()
      throw error
    }
    base = hub.store
  } else if (options.store !== undefined) {
    base = options.store
  } else if (options.dataDir !== undefined) {
    mkdirSync(options.dataDir, { recursive: true })
    // Invariant 5: before the log opens, so a second relay never touches the file.
    lock = lockDataDir(options.dataDir)
    try {
      base = await createSqliteStore({
        file: join(options.dataDir, 'log.sqlite'),
        schema: options.schema,
        partitions: options.partitions,
        writer: options.sqliteWriter,
        writerThread: options.sqliteWriterThread,
        onFailed: (error) => {
          logger.fatal({ event: 'store_failed', err: error }, 'the SQLite log failed')
          options.onStoreFailed?.(error)
        },
      })
    } catch (error) {
      lock.release()
      throw error
    }
    ownsStore = true
  } else {
    throw new RelayError('config', 'createRelay needs dataDir or store')
  }
  // Invariant 9: ledger snapshots on head office with a schema, on a log that keeps them.
  const ledgered =
    options.schema === undefined || hub !== undefined || !hasLedgerSnapshots(base)
      ? undefined
      : withLedgerSnapshots(
          base,
          createLedgerSnapshotter(base, options.schema, {
            onError: (error) =>
              logger.warn(
                { event: 'ledger_snapshot_failed', err: error },
                'ledger snapshot failed',
              ),
          }),
        )
  // Invariant 4: snapshots keep a CRDT entity's catch-up bounded; they never fail an append.
  const snapshotted =
    options.schema === undefined || hub !== undefined
      ? undefined
      : withCrdtSnapshots(ledgered ?? base, options.schema, {
          onError: (error) =>
            logger.warn({ event: 'snapshot_failed', err: error }, 'CRDT snapshot failed'),
        })
  // Every call's outcome feeds the readiness check and the store_lost/regained lines.
  const store = withStoreHealth(snapshotted ?? base, { logger })
  const storeKind =
    hub !== undefined
      ? 'hub'
      : options.store === undefined
        ? 'sqlite'
        : (options.storeKind ?? 'custom')
  logger.info(
    {
      event: 'start',
      version: RELAY_VERSION,
      store: storeKind,
      partitions: store.partitions,
      dataDir: options.store === undefined ? options.dataDir : undefined,
      allowedOrigins: options.allowedOrigins ?? [],
      dev,
      schema: options.schema !== undefined,
      limits,
    },
    'relay starting',
  )
  // Closes what this relay opened; a store passed in only sees its snapshots finish.
  const release = async () => {
    try {
      // The hub closes its forwarder and link before its store (`hub/hub.ts` invariant 2).
      if (hub !== undefined) await hub.close()
      else if (ownsStore) await store.close()
      else {
        await snapshotted?.snapshots.idle()
        await ledgered?.ledgerSnapshots.close()
      }
    } finally {
      lock?.release()
    }
  }

  try {
    const metrics = createRelayMetrics()
    const sessions = new Set<Session>()
    let closing = false
    const wss = new WebSocketServer({
      noServer: true,
      perMessageDeflate: false,
      maxPayload: FRAME_BYTES_MAX,
      clientTracking: false,
    })
    const tails = createFanoutTails(store, limits.tailEntriesMax)
    const timers = options.timers ?? NODE_TIMERS
    const gates = createRelayGates(limits)
    const commits = createCommitQueue(store, limits)
    const context = {
      store,
      tails,
      verify,
      limits,
      metrics,
      logger,
      timers,
      gates,
      commits,
      hub: hub?.session,
      bootstrap: ledgered !== undefined,
    }
    const yjs: YjsEndpoint | undefined =
      options.routes?.[YJS_PATH_PREFIX] === undefined
        ? createYjsEndpoint({
            store,
            schema: options.schema,
            verify,
            limits,
            gates,
            onError: (error) =>
              logger.warn({ event: 'yjs_error', err: error }, 'y-websocket endpoint error'),
          })
        : undefined
    if (yjs !== undefined) metrics.countYjsRooms(() => yjs.roomCount())
    if (ledgered !== undefined) {
      metrics.countLedgerSnapshots?.(() => ledgered.ledgerSnapshots.counts())
    }
    // Invariant 7: a seat from before `ws` sees the upgrade until the socket closes.
    const admitSocket = (socket: Duplex): Seat | undefined => {
      const seat = gates.socket()
      if (seat === undefined) {
        refuseUpgrade(socket, 503, `more than ${limits.connectionsMax} connections; retry later`)
        return undefined
      }
      socket.once('close', () => seat.release())
      return seat
    }
    const routes: Record<string, UpgradeRoute> = {}
    for (const [prefix, route] of Object.entries(options.routes ?? {})) {
      routes[prefix] = (req, socket, head, routeContext) => {
        if (admitSocket(socket) !== undefined) route(req, socket, head, routeContext)
      }
    }
    if (yjs !== undefined) {
      routes[YJS_PATH_PREFIX] = (req, socket, head) => {
        if (admitSocket(socket) !== undefined) yjs.handleUpgrade(req, socket, head)
      }
    }
    const stopUpstream = hub?.onUpstream((state) => {
      for (const session of sessions) session.onUpstream(state)
    })
    // A hub's mirror of another head office log reuses the old one's offsets (fanout-tail.ts 5).
    const stopLogChanged = hub?.store.onLogChanged(() => tails.reset())
    const stopCommits = store.onCommit((partitions) => {
      tails.onCommit(partitions)
      for (const session of sessions) session.onCommit(partitions)
    })
    const staticHandler =
      options.staticDir === undefined ? undefined : await createStaticHandler(options.staticDir)
    const router = createRouter({
      allowedOrigins: options.allowedOrigins ?? [],
      dev,
      logger,
      isClosing: () => closing,
      sync: (req, socket, head) => {
        const seat = admitSocket(socket)
        if (seat === undefined) return
        wss.handleUpgrade(req, socket, head, (ws) => {
          if (closing) {
            seat.release()
            ws.close(1001, 'shutting_down')
            return
          }
          const session = createSession(ws, context, seat)
          sessions.add(session)
          void session.closed.then(() => sessions.delete(session))
        })
      },
      routes,
      routeContext: { store, verify, logger },
      ...createHealthHandlers({
        health: store.health,
        storeKind,
        connections: () => sessions.size,
      }),
      metrics: async (_req, res) => {
        const text = await metrics.render()
        res.writeHead(200, { 'content-type': metrics.contentType })
        res.end(text)
      },
      devToken:
        dev && secret !== undefined
          ? async (req, res) => devToken(req, res, { ...auth, secret })
          : undefined,
      devUpstream:
        dev && hub !== undefined && options.dataDir !== undefined
          ? createDevUpstreamRoute({
              dataDir: options.dataDir,
              link: hub.link,
              upstream: upstreamList(options.upstream?.url),
            })
          : undefined,
      static: staticHandler,
    })
    const warm = await warmPushPath(context)
    if (warm._tag === 'cold') {
      logger.warn({ event: 'warm_up_failed', reason: warm.reason }, 'push path warm-up failed')
    }
    const server = createServer(router.request)
    server.on('upgrade', router.upgrade)
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
        server.off('error', reject)
        resolve()
      })
    })
    const address = server.address() as AddressInfo
    const urlHost = hostForUrl(address.address)
    // A log written before snapshots (or by a relay that stopped mid-pass) catches up in the
    // background; appends go first (the walk yields between entities).
    if (ledgered !== undefined && options.snapshotWalk === true) {
      void ledgered.ledgerSnapshots.walk().then(
        (counts) => logger.info({ event: 'ledger_snapshot_walk', counts }, 'snapshot walk done'),
        (error: unknown) =>
          logger.warn({ event: 'ledger_snapshot_failed', err: error }, 'snapshot walk failed'),
      )
    }
    const heartbeat = timers.every(() => {
      for (const session of sessions) session.heartbeat()
    }, limits.heartbeatIntervalMs)

    let closed: Promise<void> | undefined
    const close = async () => {
      closing = true
      // Stop accepting: no new connections; the router answers upgrades 503 meanwhile.
      const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()))
      server.closeIdleConnections()
      const all = [...sessions]
      const drained = Promise.all(all.map((s) => s.drain()))
      await within(drained, limits.shutdownTimeoutMs)
      for (const s of all) s.shutDown()
      await within(Promise.all(all.map((s) => s.closed)), limits.closeHandshakeTimeoutMs)
      for (const s of all) s.terminate()
      timers.clear(heartbeat)
      // The endpoint appends what its rooms hold, then closes its sockets with 1001.
      if (yjs !== undefined) await within(yjs.close(), limits.shutdownTimeoutMs)
      stopCommits()
      stopUpstream?.()
      stopLogChanged?.()
      wss.close()
      server.closeAllConnections()
      await serverClosed
      await release()
    }

    return {
      url: `ws://${urlHost}:${address.port}/sync`,
      httpUrl: `http://${urlHost}:${address.port}`,
      port: address.port,
      store,
      storeKind,
      secret,
      ledgerSnapshots: ledgered?.ledgerSnapshots,
      close: () => (closed ??= close()),
    }
  } catch (error) {
    await release()
    throw error
  }
}

async function devToken(
  req: IncomingMessage,
  res: ServerResponse,
  auth: AuthOptions & { secret: string },
) {
  if (req.method !== 'GET') {
    json(res, 405, { error: 'GET only' })
    return
  }
  const query = new URL(req.url ?? '/', 'http://relay').searchParams
  let tenant: string
  try {
    tenant = checkTenant(query.get('tenant') ?? '')
  } catch (error) {
    json(res, 400, { error: error instanceof Error ? error.message : 'bad tenant' })
    return
  }
  const sub = (query.get('sub') ?? 'dev').slice(0, 128) || 'dev'
  // `role=hub`: a store hub's own token, which may also forward the registers' entries.
  const hubRole = query.get('role') === 'hub'
  const expiresInS = DEV_TOKEN_LIFETIME_S
  const token = await signToken({
    secret: auth.secret,
    tenant,
    sub,
    read: ['*'],
    write: ['*'],
    ...(hubRole ? { forward: ['*'] } : {}),
    expiresInS,
    issuer: auth.issuer,
    audience: auth.audience,
  })
  json(res, 200, {
    token,
    tenant,
    sub,
    expiresAt: (Math.floor(Date.now() / 1000) + expiresInS) * 1000,
  })
}

function upstreamList(url: string | readonly string[] | undefined): readonly string[] {
  return url === undefined ? [] : typeof url === 'string' ? [url] : url
}

function hostForUrl(address: string): string {
  if (address === '0.0.0.0') return '127.0.0.1'
  if (address === '::') return '[::1]'
  return address.includes(':') ? `[${address}]` : address
}

/** Waits for `promise`, but at most `ms`; the timer never outlives the wait. */
async function within(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  try {
    await Promise.race([promise, new Promise((resolve) => (timer = setTimeout(resolve, ms)))])
  } finally {
    clearTimeout(timer)
  }
}
