// Shared by the relay's edge tests (issues 12 and 13): relays on either server log, tokens,
// entries of a chosen clientId and clientSeq, and pushes whose acks may come in parts.
//
// The second half names the parts of the edges design (docs/ARCHITECTURE.md) that the relay of 3a8bfae does not have yet, in ONE place:
// limit names, error kinds, close codes, ack statuses, the log's bound subjects. The tests
// type-check today and fail on their assertions; an implementer who picks another name changes it
// here, not in every test.
//
// PostgreSQL runs on one private cluster per test file (testkit's `createPostgresFixture`),
// started on first use; call `stopPostgres()` in `afterAll`.
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, afterEach } from 'vitest'
import type { Data, Entry, Schema } from '@ledgerline/core'
import type { AckResult, RelayMessage } from '@ledgerline/protocol'
import { CONTRACT_SCHEMA, createPostgresFixture } from '@ledgerline/testkit'
// The relay's public surface (what its package exports), so the tests survive the move of the
// log stores and the session internals.
import { createPostgresStore, createRelay, signToken } from './index.ts'
import type { LogStore, Relay, RelayLimits } from './index.ts'
import { openClient } from './wire-client.test-helper.ts'
import type { WireClient } from './wire-client.test-helper.ts'

export const SECRET = 'edge-tests-secret-0123456789abcdef-0123'
export const TENANT = 'acme'

export type LogKind = 'sqlite' | 'postgres'
const postgres = createPostgresFixture(`edge${process.pid}_`)
const skipReason = postgres.skipReason
if (skipReason !== undefined) {
  process.stdout.write(`[skip] PostgreSQL variants of the relay edge tests: ${skipReason}\n`)
}
/** The server logs the edge tests run on here. */
export const LOG_KINDS: readonly LogKind[] =
  skipReason === undefined ? ['sqlite', 'postgres'] : ['sqlite']

export interface EdgeRelay {
  readonly relay: Relay
  /** `ws://…/sync` */
  readonly url: string
  readonly store: LogStore
  close(): Promise<void>
}

/**
 * A relay on a new, empty log: SQLite through `dataDir` (as the CLI runs it: CRDT snapshots and
 * `/yjs/` included), PostgreSQL through an open store (as the CLI's `--store postgres`). The
 * schema is the contract's unless given (`null`: a plain log); the secret is `SECRET` unless
 * given.
 */
export async function startEdgeRelay(
  kind: LogKind,
  options: {
    schema?: Schema | null | undefined
    limits?: Partial<RelayLimits> | undefined
    secret?: string | undefined
  } = {},
): Promise<EdgeRelay> {
  const schema = options.schema === null ? undefined : (options.schema ?? CONTRACT_SCHEMA)
  const secret = options.secret ?? SECRET
  const common = { port: 0, schema, auth: { secret }, logLevel: 'silent' as const }
  if (kind === 'sqlite') {
    const dataDir = mkdtempSync(join(tmpdir(), 'll-relay-edge-'))
    const relay = await createRelay({ ...common, dataDir, limits: options.limits })
    return {
      relay,
      url: relay.url,
      store: relay.store,
      async close() {
        await relay.close()
        rmSync(dataDir, { recursive: true, force: true })
      },
    }
  }
  const url = await postgres.database()
  const store = await createPostgresStore({ url, schema, partitions: 4 })
  const relay = await createRelay({ ...common, store, limits: options.limits })
  return {
    relay,
    url: relay.url,
    store,
    async close() {
      await relay.close()
      await store.close()
    },
  }
}

export interface EdgeRelays {
  /** A relay on a new, empty log (`startEdgeRelay`), closed after the test. */
  start(kind: LogKind, options?: Parameters<typeof startEdgeRelay>[1]): Promise<EdgeRelay>
  /** A wire client as `clientId`, welcomed with a token of these options; closed after the test. */
  connect(
    url: string,
    clientId: string,
    tokenOptions?: Parameters<typeof token>[0],
  ): Promise<WireClient>
  /** Anything else to undo after the test (last in, first out). */
  defer(undo: () => Promise<void> | void): void
}

/**
 * Registers the hooks of a test file that starts edge relays (what a test opened is closed after
 * it, the PostgreSQL cluster is stopped after the file) and returns the helpers that open them.
 */
export function useEdgeRelays(): EdgeRelays {
  const undo: (() => Promise<void> | void)[] = []
  afterEach(async () => {
    for (const u of undo.splice(0).reverse()) await u()
  })
  afterAll(() => stopPostgres())
  return {
    async start(kind, options) {
      const relay = await startEdgeRelay(kind, options)
      undo.push(() => relay.close())
      return relay
    },
    async connect(url, clientId, tokenOptions) {
      const client = await openClient(url, { clientId })
      undo.push(() => client.close())
      const answer = await client.hello(await token(tokenOptions))
      if (answer.type !== 'welcome') throw new Error(`not welcomed: ${JSON.stringify(answer)}`)
      return client
    },
    defer: (u) => void undo.push(u),
  }
}

/** Stops this file's PostgreSQL cluster, if one was started. */
export async function stopPostgres(): Promise<void> {
  await postgres.stop()
}

export function token(
  options: {
    sub?: string
    tenant?: string
    read?: string[]
    write?: string[]
    /** Store hubs: the forward grant. */
    forward?: string[]
    expiresInS?: number
  } = {},
): Promise<string> {
  return signToken({
    secret: SECRET,
    tenant: options.tenant ?? TENANT,
    sub: options.sub ?? 'till',
    read: options.read ?? ['*'],
    write: options.write ?? ['*'],
    forward: options.forward,
    expiresInS: options.expiresInS ?? 3600,
  })
}

/** An entry of `clientId` at `clientSeq` (the wire client's own counter is not used). */
export function makeEntry(
  clientId: string,
  clientSeq: number,
  entity: string,
  kind: string,
  data: Data,
  extra: Partial<Pick<Entry, 'corrects' | 'hlc' | 'occurredAt' | 'intent' | 'expect'>> = {},
): Entry {
  const now = Date.now()
  return {
    id: `${clientId}-${clientSeq}`,
    tenant: TENANT,
    entity,
    kind,
    data,
    intent: 'fact',
    clientId,
    clientSeq,
    hlc: `${String(now).padStart(15, '0')}:00000:${clientId}`,
    occurredAt: now,
    ...extra,
  }
}

/** How a push was answered: every result (from one ack or its parts), or an error. */
export type Pushed =
  | { readonly _tag: 'acked'; readonly results: readonly AckResult[] }
  | { readonly _tag: 'error'; readonly error: Readonly<Record<string, unknown>> }
  | { readonly _tag: 'closed' }

/** Pushes `entries` as batch `batch` and gathers its answer (ack parts until the last one). */
export async function pushBatch(
  client: WireClient,
  batch: number,
  entries: readonly Entry[],
  timeoutMs = 10_000,
): Promise<Pushed> {
  client.send({ type: 'push', batch, entries })
  const results: AckResult[] = []
  const until = Date.now() + timeoutMs
  for (;;) {
    let m: RelayMessage
    try {
      m = await client.next(
        (x) => (x.type === 'ack' && x.batch === batch) || x.type === 'error',
        Math.max(1, until - Date.now()),
      )
    } catch (error) {
      if (client.ws.readyState === client.ws.CLOSED) return { _tag: 'closed' }
      throw error
    }
    if (m.type === 'error') return { _tag: 'error', error: m as unknown as Record<string, unknown> }
    if (m.type !== 'ack') continue
    results.push(...m.results)
    const done = (m as unknown as { done?: boolean }).done
    if (done === true || (done === undefined && results.length >= entries.length)) {
      return { _tag: 'acked', results }
    }
  }
}

/** `pushBatch` that must be acked; the results. */
export async function pushAcked(
  client: WireClient,
  batch: number,
  entries: readonly Entry[],
): Promise<readonly AckResult[]> {
  const pushed = await pushBatch(client, batch, entries)
  if (pushed._tag !== 'acked') throw new Error(`push ${batch} not acked: ${JSON.stringify(pushed)}`)
  return pushed.results
}

export interface CliRelay {
  /** `ws://…/sync` */
  readonly url: string
  readonly child: ChildProcess
  readonly exited: Promise<number | null>
  /** SIGKILL (a crash) or SIGTERM (graceful); resolves when the process is gone. */
  stop(signal?: 'SIGKILL' | 'SIGTERM'): Promise<void>
}

/**
 * The relay as its own process (the CLI on a SQLite data directory), for tests whose relay must
 * not share this process's event loop, or must be killed. Extra CLI arguments go in `args`.
 */
export async function startCliRelay(options: {
  dataDir: string
  args?: readonly string[]
  cwd?: string
}): Promise<CliRelay> {
  const cli = fileURLToPath(new URL('../dist/cli.js', import.meta.url))
  const child = spawn(
    process.execPath,
    [
      cli,
      '--port',
      '0',
      '--data',
      options.dataDir,
      '--log-level',
      'error',
      ...(options.args ?? []),
    ],
    {
      cwd: options.cwd,
      env: { PATH: process.env.PATH ?? '', LEDGERLINE_SECRET: SECRET },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  )
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => resolve(code)),
  )
  let stderr = ''
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()))
  const stop = async (signal: 'SIGKILL' | 'SIGTERM' = 'SIGTERM') => {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      process.kill(child.pid, signal)
    }
    await exited
  }
  const url = await new Promise<string>((resolve, reject) => {
    let out = ''
    const timer = setTimeout(() => {
      void stop('SIGKILL')
      reject(new Error(`relay did not start in 15 s: ${stderr}`))
    }, 15_000)
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString()
      const m = /\((ws:\/\/[^)]+)\)/.exec(out)
      if (m !== null) {
        clearTimeout(timer)
        resolve(m[1] as string)
      }
    })
    void exited.then((code) => {
      clearTimeout(timer)
      reject(new Error(`relay exited with ${String(code)} before listening: ${stderr}`))
    })
  })
  return { url, child, exited, stop }
}

// --- new in the edges design ---------------------------------------------------------------

/** Limits of the edges design the relay takes as options (RelayLimits fields). */
export interface EdgeLimits {
  /** CONNECTIONS_MAX: sockets per relay. */
  readonly connectionsMax?: number
  /** TENANT_CONNECTIONS_MAX: sockets per tenant. */
  readonly tenantConnectionsMax?: number
  /** Entries queued for commit across connections (the scheduler's bound). */
  readonly commitQueueEntriesMax?: number
  /** `/yjs` messages per second per connection. */
  readonly yjsMessagesPerS?: number
  /** Awareness bytes per `/yjs` connection. */
  readonly yjsAwarenessBytesMax?: number
  /** PRE_HELLO_FRAME_BYTES_MAX: largest frame accepted before `welcome`. */
  readonly preHelloFrameBytesMax?: number
}

/** Relay limits with the edges design's new ones (ignored by a relay that lacks them). */
export function relayLimits(limits: EdgeLimits & Partial<RelayLimits>): Partial<RelayLimits> {
  return limits as Partial<RelayLimits>
}

/** The error kind a relay sends for a clientId bound to another token subject. */
export const CLIENT_TAKEN = 'client_taken'
/** Its close code. */
export const CLIENT_TAKEN_CLOSE_CODE = 4409
/** Close codes a relay may use when it cuts a socket past a global limit (`overloaded`). */
export const OVERLOADED_CLOSE_CODE = 4503

/** The `kind` of an `error` message, or undefined for any other message. */
export function errorKindOf(
  m: RelayMessage | Readonly<Record<string, unknown>>,
): string | undefined {
  const x = m as { type?: unknown; kind?: unknown }
  return x.type === 'error' && typeof x.kind === 'string' ? x.kind : undefined
}

/** The retry hint of an `error`: `retryAfterMs` when given, else `backoffMsMin`. */
export function retryHintMs(error: Readonly<Record<string, unknown>>): number {
  const hint = error.retryAfterMs ?? error.backoffMsMin
  return typeof hint === 'number' ? hint : 0
}

/** A `deferred` ack result's code (`unknown_type`, `clock_ahead`), or undefined. */
export function deferredCode(result: AckResult): string | undefined {
  const r = result as unknown as { status: string; code?: string }
  return r.status === 'deferred' ? r.code : undefined
}

/** A `deferred` result's retry hint in ms (undefined when not deferred or missing). */
export function deferredRetryMs(result: AckResult): number | undefined {
  const r = result as unknown as { status: string; retryAfterMs?: number }
  return r.status === 'deferred' ? r.retryAfterMs : undefined
}

/** Client → relay `renew {token}`: swaps the token of a live session. */
export function renewMessage(newToken: string): Record<string, unknown> {
  return { type: 'renew', token: newToken }
}

/** Relay → client `renewed {expiresAt, grants}`: the session now runs on the new token. */
export function isRenewed(m: RelayMessage): boolean {
  return (m as { type: string }).type === 'renewed'
}

/**
 * What the log knows of a clientId: its high-water mark and the token subject bound to it
 * (`LogStore.client(tenant, clientId)`; null subject when unknown to this build).
 */
export async function clientRecord(
  store: LogStore,
  tenant: string,
  clientId: string,
): Promise<{ readonly high: number; readonly subject: string | null }> {
  return store.client(tenant, clientId)
}
