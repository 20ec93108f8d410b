// A server under test in its own process, so load clients (in the benchmark process) and the
// server each get a core, as in perf-baselines.md. Started with `startServer(kind, config)`:
//   relay      our relay (SQLite in `dataDir`, its commits on the event loop's thread or in a
//              writer thread: `sqliteWriter`; or PostgreSQL at `databaseUrl`), optionally with
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
    /** Starts the child's CPU profiler (and CPU time counter); `profileStop` answers. */
    async profileStart({ cpu = true } = {}) {
      child.send({ type: 'profile-start', cpu })
      return await next(10_000)
    },
    /**
     * Stops it: `{ wallMs, cpuMs, busy, loopDelay, top }`: the child's CPU time over the wall
     * time, its event loop's delay (ms: p50, p99, max) and, when profiled, its self time grouped
     * by source file (see `summarizeProfile`).
     */
    async profileStop() {
      child.send({ type: 'profile-stop' })
      return await next(30_000)
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

/**
 * A fresh relay (SQLite log) on a fresh data directory, with a token of `tenant` that may read
 * and write everything: `fn(relay, token)`, then the relay is closed and the directory removed.
 * `config` adds to the relay's (`sqliteWriter: 'worker'`: commits in a writer thread).
 */
export async function withFreshRelay(secret, tenant, fn, config = {}) {
  const { mkdtempSync, rmSync } = await import('node:fs')
  const { tmpdir } = await import('node:os')
  const { join } = await import('node:path')
  const { signToken } = await import('@ledgerline/relay')
  const dir = mkdtempSync(join(tmpdir(), 'll-bench-relay-'))
  let relay
  try {
    relay = await startServer('relay', { ...config, dataDir: dir, secret })
    const token = await signToken({ secret, tenant, sub: 'bench', read: ['*'], write: ['*'] })
    return await fn(relay, token)
  } finally {
    await relay?.close()
    rmSync(dir, { recursive: true, force: true })
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
        } else if (m.type === 'profile-start') {
          await profiler.start(m.cpu)
          process.send({ type: 'profiling' })
        } else if (m.type === 'profile-stop') {
          process.send({ type: 'profile', ...(await profiler.stop()) })
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

/**
 * The child's own CPU profiler (node:inspector), so a benchmark can say what limits a figure
 * from a measurement: CPU time per wall time (cores busy) and where the self time went.
 */
const profiler = (() => {
  let session
  let started
  let loop
  const post = (method, params) =>
    new Promise((resolve, reject) =>
      session.post(method, params, (error, result) => (error ? reject(error) : resolve(result))),
    )
  return {
    async start(cpu = true) {
      if (cpu) {
        const { Session } = await import('node:inspector')
        session = new Session()
        session.connect()
        await post('Profiler.enable')
        await post('Profiler.setSamplingInterval', { interval: 500 })
        await post('Profiler.start')
      }
      const { monitorEventLoopDelay } = await import('node:perf_hooks')
      loop = monitorEventLoopDelay({ resolution: 1 })
      loop.enable()
      started = { at: performance.now(), cpu: process.cpuUsage() }
    },
    async stop() {
      const wallMs = performance.now() - started.at
      const cpu = process.cpuUsage(started.cpu)
      loop.disable()
      const ms = (ns) => ns / 1e6
      const loopDelay = {
        p50: ms(loop.percentile(50)),
        p99: ms(loop.percentile(99)),
        max: ms(loop.max),
      }
      let top = []
      if (session !== undefined) {
        const { profile } = await post('Profiler.stop')
        await post('Profiler.disable')
        session.disconnect()
        session = undefined
        top = summarizeProfile(profile)
      }
      const cpuMs = (cpu.user + cpu.system) / 1000
      return { wallMs, cpuMs, busy: cpuMs / wallMs, loopDelay, top }
    },
  }
})()

/**
 * Self time of a V8 CPU profile by source file: a native call (better-sqlite3's `run`, a
 * socket write) is counted to the nearest JavaScript file that called it, as
 * `<file> (native)`; `(idle)`, `(program)` and `(garbage collector)` stay as V8 names them.
 * Shares of all samples, largest first.
 */
export function summarizeProfile(profile) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const parent = new Map()
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  const hits = new Map()
  for (const id of profile.samples) hits.set(id, (hits.get(id) ?? 0) + 1)
  const groups = new Map()
  let total = 0
  for (const [id, count] of hits) {
    total += count
    const group = groupOf(id, byId, parent)
    groups.set(group, (groups.get(group) ?? 0) + count)
  }
  return [...groups]
    .map(([group, count]) => ({ group, share: count / total }))
    .sort((a, b) => b.share - a.share)
}

function groupOf(id, byId, parent) {
  const node = byId.get(id)
  const { functionName, url } = node.callFrame
  if (url === '' && functionName.startsWith('(')) return functionName
  if (url !== '') return fileOf(url)
  for (let p = parent.get(id); p !== undefined; p = parent.get(p)) {
    const u = byId.get(p).callFrame.url
    if (u !== '') return `${fileOf(u)} (native)`
  }
  return '(native)'
}

function fileOf(url) {
  const pkg = /\/packages\/([^/]+)\/dist\/(.+)$/.exec(url)
  if (pkg !== null) return `${pkg[1]}/${pkg[2]}`
  const mod = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url)
  if (mod !== null) return mod[1]
  if (url.startsWith('node:')) return 'node internals'
  return url.split('/').slice(-2).join('/')
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
      store = await relayMod.createSqliteStore({
        file: join(config.dataDir, 'log.sqlite'),
        schema,
        writer: config.sqliteWriter,
        onFailed: (error) => {
          console.error(`relay under test: the SQLite log failed: ${error.message}`)
          process.exit(1)
        },
      })
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
