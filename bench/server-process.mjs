// A server under test in its own process, so load clients (in the benchmark process) and the
// server each get a core, as in perf-baselines.md. Started with `startServer(kind, config)`:
//   relay      our relay (SQLite in `dataDir`, or PostgreSQL at `databaseUrl`), optionally with
//              the y-websocket-compatible /yjs/ endpoint (`yjs: true`, schema `doc` = crdt-yjs)
//   ws         a bare `ws` server that accepts connections and does nothing (memory baseline)
//   y-ws       @y/websocket-server's setupWSConnection on a `ws` server (Yjs anchor)
//   automerge  an automerge-repo sync server: Repo + NodeWSServerAdapter + NodeFSStorageAdapter
// The child answers IPC messages: `memory` (after two full GCs, --expose-gc) and `close`.
// Loopback only; the parent kills the child by its pid if it does not exit after `close`.
import { fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const SELF = fileURLToPath(import.meta.url)
const START_TIMEOUT_MS = 30_000
const CLOSE_TIMEOUT_MS = 15_000

/** Starts a server child; resolves with its URLs and `memory()` / `close()`. */
export async function startServer(kind, config = {}) {
  const child = fork(SELF, [kind, JSON.stringify(config)], {
    execArgv: [
      '--expose-gc',
      '--max-old-space-size=4096',
      ...(process.env.BENCH_CPU_PROF
        ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`]
        : []),
    ],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  const replies = []
  const waiters = []
  child.on('message', (m) => {
    const w = waiters.shift()
    if (w !== undefined) w(m)
    else replies.push(m)
  })
  const next = (timeoutMs) =>
    new Promise((resolve, reject) => {
      if (replies.length > 0) return resolve(replies.shift())
      const timer = setTimeout(() => reject(new Error(`${kind} server: no answer`)), timeoutMs)
      const exit = (code) => reject(new Error(`${kind} server exited (${code})`))
      child.once('exit', exit)
      waiters.push((m) => {
        clearTimeout(timer)
        child.off('exit', exit)
        resolve(m)
      })
    })
  const ready = await next(START_TIMEOUT_MS).catch((error) => {
    child.kill('SIGKILL')
    throw error
  })
  if (ready.type !== 'ready') {
    child.kill('SIGKILL')
    throw new Error(`${kind} server failed: ${ready.message}`)
  }
  return {
    ...ready,
    pid: child.pid,
    async memory() {
      child.send({ type: 'memory' })
      return await next(60_000)
    },
    async close() {
      if (child.exitCode !== null) return
      const exited = new Promise((resolve) => child.once('exit', resolve))
      child.send({ type: 'close' })
      const timer = setTimeout(() => child.kill('SIGKILL'), CLOSE_TIMEOUT_MS)
      await exited
      clearTimeout(timer)
    },
  }
}

if (process.argv[1] === SELF && process.send !== undefined) {
  const [kind, json] = process.argv.slice(2)
  serve(kind, JSON.parse(json)).then(
    (server) => {
      process.on('message', async (m) => {
        if (m.type === 'memory') {
          for (let i = 0; i < 3; i++) {
            globalThis.gc?.()
            await new Promise((r) => setTimeout(r, 50))
          }
          const u = process.memoryUsage()
          process.send({ type: 'memory', ...u, connections: server.connections?.() })
        } else if (m.type === 'close') {
          await server.close().catch(() => undefined)
          process.exit(0)
        }
      })
      process.send({ type: 'ready', url: server.url, httpUrl: server.httpUrl, port: server.port })
    },
    (error) => {
      process.send({ type: 'failed', message: String(error?.stack ?? error) })
      process.exit(1)
    },
  )
}

async function serve(kind, config) {
  const { createServer } = await import('node:http')
  const listen = async (server) => {
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
    return server.address().port
  }
  if (kind === 'relay') {
    const relayMod = await import('@ledgerline/relay')
    const { defineSchema } = await import('@ledgerline/core')
    const { yjsEntity } = await import('@ledgerline/yjs')
    const schema = config.yjs ? defineSchema(yjsEntity('doc')) : undefined
    let store
    if (config.databaseUrl !== undefined) {
      store = await relayMod.createPostgresStore({ url: config.databaseUrl, schema })
    } else {
      const { join } = await import('node:path')
      store = await relayMod.createSqliteStore({ file: join(config.dataDir, 'log.sqlite'), schema })
    }
    if (schema !== undefined) store = relayMod.withCrdtSnapshots(store, schema)
    const verify = relayMod.createTokenVerifier({ secret: config.secret })
    const endpoint = config.yjs ? relayMod.createYjsEndpoint({ store, schema, verify }) : undefined
    const relay = await relayMod.createRelay({
      port: 0,
      store,
      schema,
      auth: { secret: config.secret },
      allowedOrigins: config.allowedOrigins,
      limits: config.limits,
      routes:
        endpoint === undefined
          ? {}
          : { '/yjs/': (req, socket, head) => endpoint.handleUpgrade(req, socket, head) },
    })
    return {
      url: relay.url,
      httpUrl: relay.httpUrl,
      port: relay.port,
      close: async () => {
        await endpoint?.close()
        await relay.close()
        await store.close()
      },
    }
  }
  if (kind === 'ws' || kind === 'y-ws') {
    const { WebSocketServer } = await import('ws')
    const setup =
      kind === 'y-ws' ? (await import('@y/websocket-server/utils')).setupWSConnection : undefined
    const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false })
    let connections = 0
    const server = createServer((_req, res) => res.end('ok'))
    server.on('upgrade', (req, socket, head) =>
      wss.handleUpgrade(req, socket, head, (ws) => {
        connections++
        ws.on('close', () => connections--)
        if (setup !== undefined) setup(ws, req)
        else ws.on('message', () => {})
      }),
    )
    const port = await listen(server)
    return {
      url: `ws://127.0.0.1:${port}`,
      httpUrl: `http://127.0.0.1:${port}`,
      port,
      connections: () => connections,
      close: async () => {
        server.closeAllConnections()
        server.close()
      },
    }
  }
  if (kind === 'automerge') {
    const { WebSocketServer } = await import('ws')
    const { Repo } = await import('@automerge/automerge-repo')
    const { NodeWSServerAdapter } = await import('@automerge/automerge-repo-network-websocket')
    const { NodeFSStorageAdapter } = await import('@automerge/automerge-repo-storage-nodefs')
    const server = createServer((_req, res) => res.end('ok'))
    const wss = new WebSocketServer({ server })
    const repo = new Repo({
      network: [new NodeWSServerAdapter(wss)],
      storage: new NodeFSStorageAdapter(config.dataDir),
      sharePolicy: async () => false,
    })
    const port = await listen(server)
    return {
      url: `ws://127.0.0.1:${port}`,
      httpUrl: `http://127.0.0.1:${port}`,
      port,
      close: async () => {
        await repo.shutdown?.()
        wss.close()
        server.closeAllConnections()
        server.close()
      },
    }
  }
  throw new Error(`unknown server kind ${kind}`)
}
