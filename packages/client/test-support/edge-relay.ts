// A real relay for the edge tests (issues 12 and 13) on either server log, SQLite or PostgreSQL,
// behind the TCP proxy of relay.ts, so a test can stop it, back its log up, restore or replace
// the log, and start it again (with another schema or limits) while clients keep the same URL.
//
// Terms: a log *place* is where a server log lives: a SQLite data directory or a PostgreSQL
// database. A *backup* is a copy of a place made while no relay runs on it: the directory copied
// file by file, or the database copied with `CREATE DATABASE … TEMPLATE …`.
//
// PostgreSQL runs on one private cluster per test file (testkit's `createPostgresFixture`),
// started on first use; call `stopPostgres()` in `afterAll`. Without PostgreSQL binaries
// `LOG_KINDS` holds only `sqlite` and says why once.
import { cpSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { afterAll, afterEach } from 'vitest'
import { IDBFactory } from 'fake-indexeddb'
import type { Schema, StoredEntry } from '@ledgerline/core'
import { createPostgresStore, createRelay, signToken } from '@ledgerline/relay'
import type { LogStore, Relay, RelayLimits } from '@ledgerline/relay'
import { createPostgresFixture } from '@ledgerline/testkit'
import type { Client } from '../src/index.ts'
import { SECRET, startProxy } from './relay.ts'
import type { Proxy } from './relay.ts'
import { schema as testSchema } from './schema.ts'
import { makeClient } from './setup.ts'
import type { TestClientOptions } from './setup.ts'

export type LogKind = 'sqlite' | 'postgres'
export type LogPlace =
  | { readonly kind: 'sqlite'; readonly dataDir: string }
  | { readonly kind: 'postgres'; readonly url: string; readonly database: string }

const postgres = createPostgresFixture(`edge${process.pid}_`)
const skipReason = postgres.skipReason
if (skipReason !== undefined) {
  process.stdout.write(`[skip] PostgreSQL variants of the edge tests: ${skipReason}\n`)
}
/** The server logs the edge tests run on here. */
export const LOG_KINDS: readonly LogKind[] =
  skipReason === undefined ? ['sqlite', 'postgres'] : ['sqlite']

export interface EdgeServerOptions {
  readonly schema?: Schema | undefined
  readonly limits?: Partial<RelayLimits> | undefined
}

export interface EdgeServer {
  /** What clients connect to: the proxy, which follows the relay across restarts. */
  readonly url: string
  readonly proxy: Proxy
  /** The place the relay runs on (or ran on last). */
  readonly place: LogPlace
  /** The running relay; throws when stopped. */
  readonly relay: Relay
  token(options?: {
    sub?: string
    expiresInS?: number
    read?: string[]
    write?: string[]
  }): Promise<string>
  /** The entity's ledger as the running relay's log holds it. */
  entries(entity: string): Promise<StoredEntry[]>
  /** Stops the relay and closes its log (the place stays). */
  stop(): Promise<void>
  /** Starts a relay on `place` (default: the last one), with new options if given. */
  start(place?: LogPlace, options?: EdgeServerOptions): Promise<void>
  /** A copy of the (stopped) relay's log: a new place. */
  backup(): Promise<LogPlace>
  /** A new, empty place of the same kind (a log replaced by a fresh one). */
  freshPlace(): Promise<LogPlace>
  /**
   * A client of this relay: its URL, a token of subject `till`, a fresh IndexedDB and `dbName`
   * 'till' unless given. `close()` closes it.
   */
  open(options?: Partial<TestClientOptions> & { idb?: IDBFactory }): Client
  /** Closes the clients opened here, the relay and the proxy; removes the SQLite places. */
  close(): Promise<void>
}

/**
 * Registers the hooks of a test file that starts edge servers (each closed after its test, the
 * PostgreSQL cluster stopped after the file) and returns the function that starts them.
 */
export function useEdgeServers(): (
  kind: LogKind,
  options?: EdgeServerOptions,
) => Promise<EdgeServer> {
  const started: EdgeServer[] = []
  afterEach(async () => {
    for (const server of started.splice(0).reverse()) await server.close()
  })
  afterAll(() => stopPostgres())
  return async (kind, options) => {
    const server = await startEdgeServer(kind, options)
    started.push(server)
    return server
  }
}

export const TENANT = 't1'

/** Starts a relay on a new, empty log of `kind` behind a proxy. */
export async function startEdgeServer(
  kind: LogKind,
  options: EdgeServerOptions = {},
): Promise<EdgeServer> {
  const target = { port: 1 }
  const proxy = await startProxy(target)
  const places: LogPlace[] = []
  const clients: Client[] = []
  let current: { relay: Relay; store: LogStore | undefined } | undefined
  let opts = options
  let place = await newPlace(kind, places)

  const server: EdgeServer = {
    url: proxy.url,
    proxy,
    get place() {
      return place
    },
    get relay() {
      if (current === undefined) throw new Error('the relay is stopped')
      return current.relay
    },
    token: (o = {}) =>
      signToken({
        secret: SECRET,
        tenant: TENANT,
        sub: o.sub ?? 'till',
        read: o.read ?? ['*'],
        write: o.write ?? ['*'],
        expiresInS: o.expiresInS ?? 3600,
      }),
    entries: (entity) => server.relay.store.readEntity(TENANT, entity, 1, 100_000),
    async stop() {
      const running = current
      current = undefined
      if (running === undefined) return
      await running.relay.close()
      await running.store?.close()
    },
    async start(at = place, next = opts) {
      await server.stop()
      place = at
      opts = next
      const schema = opts.schema ?? testSchema
      let store: LogStore | undefined
      let relay: Relay
      if (at.kind === 'sqlite') {
        relay = await createRelay({
          port: 0,
          dataDir: at.dataDir,
          schema,
          auth: { secret: SECRET },
          logLevel: 'silent',
          limits: opts.limits,
        })
      } else {
        store = await createPostgresStore({ url: at.url, schema, partitions: 4 })
        relay = await createRelay({
          port: 0,
          store,
          schema,
          auth: { secret: SECRET },
          logLevel: 'silent',
          limits: opts.limits,
        }).catch(async (error: unknown) => {
          await store?.close()
          throw error
        })
      }
      current = { relay, store }
      target.port = relay.port
    },
    async backup() {
      if (current !== undefined) throw new Error('back a log up only while its relay is stopped')
      if (place.kind === 'sqlite') {
        const copy = mkdtempSync(join(tmpdir(), 'll-edge-backup-'))
        cpSync(place.dataDir, copy, { recursive: true })
        const backup: LogPlace = { kind: 'sqlite', dataDir: copy }
        places.push(backup)
        return backup
      }
      const database = `${place.database}_bak${places.length}`
      await postgresAdmin(`create database ${database} template ${place.database}`)
      const backup: LogPlace = {
        kind: 'postgres',
        database,
        url: (await postgres.cluster()).urlFor(database),
      }
      places.push(backup)
      return backup
    },
    freshPlace: () => newPlace(kind, places),
    open(o = {}) {
      const client = makeClient({
        url: proxy.url,
        token: () => server.token(),
        idb: new IDBFactory(),
        dbName: 'till',
        ...o,
      })
      clients.push(client)
      return client
    },
    async close() {
      for (const c of clients.splice(0).reverse()) await c.close()
      await server.stop()
      await proxy.close()
      for (const p of places) if (p.kind === 'sqlite') rmSync(p.dataDir, { recursive: true })
    },
  }
  await server.start(place, options)
  return server
}

/** Stops this file's PostgreSQL cluster, if one was started. */
export async function stopPostgres(): Promise<void> {
  await postgres.stop()
}

// ---------------------------------------------------------------------------------------------

let databases = 0

async function newPlace(kind: LogKind, places: LogPlace[]): Promise<LogPlace> {
  let created: LogPlace
  if (kind === 'sqlite') {
    created = { kind, dataDir: mkdtempSync(join(tmpdir(), 'll-edge-log-')) }
  } else {
    const database = `edge${process.pid}_${++databases}`
    created = { kind, database, url: await postgres.database(database) }
  }
  places.push(created)
  return created
}

async function postgresAdmin(sql: string): Promise<void> {
  const db = new pg.Client({ connectionString: (await postgres.cluster()).url })
  await db.connect()
  try {
    await db.query(sql)
  } finally {
    await db.end()
  }
}
