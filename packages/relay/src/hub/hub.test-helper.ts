// Helpers of the store hub tests: a relay on a fresh data directory (head office, or a hub with
// `upstream`), and a TCP proxy between a hub and head office whose connections can be cut (and
// new ones refused) and let through again, to cut a hub's upstream link.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Schema } from '@ledgerline/core'
import { startCutProxy } from '@ledgerline/testkit'
import type { CutProxy } from '@ledgerline/testkit'
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

export type Proxy = Omit<CutProxy, 'close'>

/** A TCP proxy to `port` whose connections can be cut and refused; closed by `undo`. */
export async function startProxy(
  port: number,
  undo: (() => Promise<void> | void)[],
): Promise<Proxy> {
  const proxy = await startCutProxy(port)
  undo.push(() => proxy.close())
  return proxy
}
