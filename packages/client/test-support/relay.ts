// A real relay in-process (SQLite log in a temp dir, port 0 on loopback) and a small TCP proxy
// in front of it that tests use to go offline and to cut connections mid-batch.
import { mkdtempSync, rmSync } from 'node:fs'
import { createConnection, createServer, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createRelay, signToken, type Relay, type UpstreamOptions } from '@ledgerline/relay'
import { schema } from './schema.ts'

export const SECRET = 'client-tests-secret-0123456789abcdef'

export interface TestRelay {
  readonly relay: Relay
  token(options?: {
    expiresInS?: number
    tenant?: string
    read?: string[]
    write?: string[]
  }): Promise<string>
  close(): Promise<void>
}

export async function startRelay(
  options: { allowedOrigins?: string[]; upstream?: UpstreamOptions | undefined } = {},
): Promise<TestRelay> {
  const dataDir = mkdtempSync(join(tmpdir(), 'ledgerline-client-'))
  const relay = await createRelay({
    port: 0,
    dataDir,
    schema,
    auth: { secret: SECRET },
    logLevel: 'silent',
    allowedOrigins: options.allowedOrigins,
    upstream: options.upstream,
  })
  return {
    relay,
    token: (o = {}) =>
      signToken({
        secret: SECRET,
        tenant: o.tenant ?? 't1',
        sub: 'till',
        read: o.read ?? ['*'],
        write: o.write ?? ['*'],
        expiresInS: o.expiresInS ?? 3600,
      }),
    async close() {
      await relay.close()
      rmSync(dataDir, { recursive: true, force: true })
    },
  }
}

export interface Proxy {
  /** `ws://127.0.0.1:<proxy port>/sync` */
  readonly url: string
  /** Offline: new connections are refused and open ones are cut. */
  setOnline(online: boolean): void
  /** Cuts every open connection (both directions, at once). */
  dropAll(): void
  /** Called for each chunk from the relay to the client; return true to cut the connection. */
  cutOnRelayData: (bytes: number) => boolean
  connections(): number
  close(): Promise<void>
}

export async function startProxy(target: { port: number }): Promise<Proxy> {
  let online = true
  const pairs = new Set<[Socket, Socket]>()
  const server = createServer((client) => {
    if (!online) {
      client.destroy()
      return
    }
    const upstream = createConnection({ host: '127.0.0.1', port: target.port })
    const pair: [Socket, Socket] = [client, upstream]
    pairs.add(pair)
    const cut = () => {
      client.destroy()
      upstream.destroy()
      pairs.delete(pair)
    }
    client.on('data', (d) => upstream.write(d))
    upstream.on('data', (d) => {
      if (proxy.cutOnRelayData(d.length)) cut()
      else client.write(d)
    })
    client.on('close', cut)
    upstream.on('close', cut)
    client.on('error', cut)
    upstream.on('error', cut)
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
  const port = (server.address() as { port: number }).port
  const proxy: Proxy = {
    url: `ws://127.0.0.1:${port}/sync`,
    setOnline(value) {
      online = value
      if (!value) proxy.dropAll()
    },
    dropAll() {
      for (const [a, b] of pairs) {
        a.destroy()
        b.destroy()
      }
      pairs.clear()
    },
    cutOnRelayData: () => false,
    connections: () => pairs.size,
    close: () =>
      new Promise<void>((resolve) => {
        proxy.dropAll()
        server.close(() => resolve())
      }),
  }
  return proxy
}
