// Helpers of the store hub tests: a relay on a fresh data directory (head office, or a hub with
// `upstream`), and a TCP proxy between a hub and head office whose connections can be cut (and
// new ones refused) and let through again, to cut a hub's upstream link.
import { mkdtempSync, rmSync } from 'node:fs'
import { createConnection, createServer } from 'node:net'
import type { Server, Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Schema } from '@ledgerline/core'
import { SECRET } from '../edges.test-helper.ts'
import { createRelay } from '../index.ts'
import type { Relay, UpstreamOptions } from '../index.ts'

/** A relay on a new data directory, closed and removed by `undo`. */
export async function startTestRelay(
  undo: (() => Promise<void> | void)[],
  options: { upstream?: UpstreamOptions | undefined; schema?: Schema | undefined } = {},
): Promise<Relay> {
  const dataDir = mkdtempSync(join(tmpdir(), 'll-hub-'))
  const relay = await createRelay({
    port: 0,
    dataDir,
    schema: options.schema,
    auth: { secret: SECRET },
    logLevel: 'silent',
    upstream: options.upstream,
  })
  undo.push(async () => {
    await relay.close()
    rmSync(dataDir, { recursive: true, force: true })
  })
  return relay
}

export interface Proxy {
  /** `ws://127.0.0.1:<port>/sync` through the proxy. */
  readonly url: string
  /** Cuts every connection and refuses new ones. */
  cut(): void
  restore(): void
}

/** Registers its own teardown in `undo`. */
/** A TCP proxy to `port` whose connections can be cut and refused, and let through again. */
export async function startProxy(
  port: number,
  undo: (() => Promise<void> | void)[],
): Promise<Proxy> {
  const sockets = new Set<Socket>()
  let open = true
  const server: Server = createServer((inbound) => {
    if (!open) {
      inbound.destroy()
      return
    }
    const outbound = createConnectionTo(port)
    sockets.add(inbound).add(outbound)
    inbound.pipe(outbound).pipe(inbound)
    const gone = () => {
      inbound.destroy()
      outbound.destroy()
      sockets.delete(inbound)
      sockets.delete(outbound)
    }
    inbound.on('error', gone).on('close', gone)
    outbound.on('error', gone).on('close', gone)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  undo.push(
    () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy()
        server.close(() => resolve())
      }),
  )
  const address = server.address() as { port: number }
  return {
    url: `ws://127.0.0.1:${address.port}/sync`,
    cut() {
      open = false
      for (const s of sockets) s.destroy()
    },
    restore() {
      open = true
    },
  }
}

function createConnectionTo(port: number): Socket {
  return createConnection(port, '127.0.0.1')
}
