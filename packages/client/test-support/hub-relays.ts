// Real relays for the store hub integration tests: head office (in-process, SQLite, the test
// schema), store hubs in-process (`createRelay({ upstream })`) or as the CLI in a process of
// its own (`--upstream`, `--upstream-token-file`), the tokens for both, and a read of
// everything head office holds. Every relay and directory is torn down through `undo`.
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Entry } from '@ledgerline/core'
import { signToken, type Relay } from '@ledgerline/relay'
import { SECRET, startRelay } from './relay.ts'

export type Undo = (() => Promise<void> | void)[]

export const TENANT = 't1'
/** Entries read back from head office per partition: far above what a test writes. */
const READ_ENTRIES_MAX = 100_000
/** How long a CLI relay may take to print its address. */
const CLI_START_MS_MAX = 20_000

/** A register's token (the same at a hub and at head office). */
export const registerToken = (sub: string): Promise<string> =>
  signToken({ secret: SECRET, tenant: TENANT, sub, read: ['*'], write: ['*'] })

/** A hub's own token: reads everything, writes nothing itself, forwards everything. */
export const hubToken = (): Promise<string> =>
  signToken({
    secret: SECRET,
    tenant: TENANT,
    sub: 'hub-store-7',
    read: ['*'],
    write: [],
    forward: ['*'],
  })

/** A fresh directory, deleted by `undo`. */
export function tempDir(undo: Undo): string {
  const dir = mkdtempSync(join(tmpdir(), 'll-hub-real-'))
  undo.push(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

export interface InProcessRelay {
  readonly relay: Relay
  /** Closes the relay and deletes its data directory (a hub lost with its disk). */
  destroy(): Promise<void>
}

/**
 * Head office (no `upstream`) or a hub (with one, or a list: a backup hub names the primary,
 * then head office), on a fresh data directory.
 */
export async function startInProcess(
  undo: Undo,
  upstreamUrl?: string | readonly string[],
): Promise<InProcessRelay> {
  const upstream =
    upstreamUrl === undefined ? undefined : { url: upstreamUrl, token: await hubToken() }
  const started = await startRelay({ upstream })
  let gone = false
  const destroy = async () => {
    if (gone) return
    gone = true
    await started.close()
  }
  undo.push(destroy)
  return { relay: started.relay, destroy }
}

/** Everything head office holds, over all partitions. */
export async function headOfficeEntries(hq: Relay): Promise<Entry[]> {
  const all: Entry[] = []
  for (let p = 0; p < hq.store.partitions; p++) {
    all.push(...(await hq.store.readPartition(TENANT, p, 0, READ_ENTRIES_MAX)).entries)
  }
  return all
}

/** A loopback port free right now (a CLI hub restarted on its directory keeps its address). */
export async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as { port: number }).port
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

export interface CliHub {
  readonly url: string
  /** SIGKILL (a crash) or SIGTERM; resolves when the process is gone. */
  stop(signal?: 'SIGKILL' | 'SIGTERM'): Promise<void>
}

/** The relay CLI as a store hub in a process of its own, on `dataDir` and `port`. */
export async function startCliHub(
  undo: Undo,
  options: { dataDir: string; port: number; upstreamUrl: string },
): Promise<CliHub> {
  const tokenFile = join(options.dataDir, '..', `${options.dataDir.split('/').pop()}-token`)
  writeFileSync(tokenFile, await hubToken())
  undo.push(() => rmSync(tokenFile, { force: true }))
  const cli = fileURLToPath(import.meta.resolve('@ledgerline/relay/cli'))
  const child = spawn(
    process.execPath,
    [
      cli,
      '--port',
      String(options.port),
      '--host',
      '127.0.0.1',
      '--data',
      options.dataDir,
      '--log-level',
      'error',
      '--upstream',
      options.upstreamUrl,
      '--upstream-token-file',
      tokenFile,
    ],
    {
      env: { PATH: process.env.PATH ?? '', LEDGERLINE_SECRET: SECRET },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  )
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const stop = async (signal: 'SIGKILL' | 'SIGTERM' = 'SIGTERM') => {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      process.kill(child.pid, signal)
    }
    await exited
  }
  undo.push(() => stop('SIGKILL'))
  let stderr = ''
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()))
  const url = await new Promise<string>((resolve, reject) => {
    let out = ''
    const timer = setTimeout(() => {
      void stop('SIGKILL')
      reject(new Error(`hub did not start: ${stderr}`))
    }, CLI_START_MS_MAX)
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString()
      const m = /\((ws:\/\/[^)]+)\)/.exec(out)
      if (m !== null) {
        clearTimeout(timer)
        resolve(m[1] as string)
      }
    })
    void exited.then(() => {
      clearTimeout(timer)
      reject(new Error(`hub exited before listening: ${stderr}`))
    })
  })
  return { url, stop }
}
