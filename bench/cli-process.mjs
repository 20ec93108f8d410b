// A relay started as the operator starts it: the `ledgerline-relay` CLI in its own process
// (head office, or a store hub with `--upstream`), on a fresh data directory, listening on
// 127.0.0.1 only. The bench reads its counters from outside: CPU time from /proc, appends from
// its /metrics, and a V8 CPU profile of a chosen window over the inspector protocol (the child
// runs with `--inspect=127.0.0.1:0`, so the profiler starts and stops when the bench says).
// Stopped with SIGTERM (graceful), SIGKILL by its pid after `CLI_STOP_MS`; only this child.
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import WebSocket from 'ws'
import { summarizeProfile } from './server-process.mjs'

const CLI = join(
  dirname(fileURLToPath(import.meta.url)),
  '..',
  'packages',
  'relay',
  'bin',
  'ledgerline-relay.js',
)
const CLI_READY_MS = 30_000
const CLI_STOP_MS = 15_000
/** V8 sampling interval of a profiled window, µs (as `server-process.mjs`). */
const PROFILE_INTERVAL_US = 500

/**
 * Starts `ledgerline-relay --port 0 --data <fresh dir> ...args` with `env` added; resolves once
 * it printed its listening line.
 */
export async function startCli(args = [], env = {}) {
  const dataDir = mkdtempSync(join(tmpdir(), 'll-bench-cli-'))
  const child = spawn(
    process.execPath,
    [
      '--inspect=127.0.0.1:0',
      CLI,
      '--host',
      '127.0.0.1',
      '--port',
      '0',
      '--data',
      dataDir,
      '--log-level',
      'warn',
      ...args,
    ],
    { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
  )
  let err = ''
  let inspectorUrl
  const exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)))
  child.stderr.on('data', (chunk) => {
    err += chunk.toString()
    inspectorUrl ??= /Debugger listening on (ws:\/\/\S+)\s/.exec(err)?.[1]
  })
  const httpUrl = await new Promise((resolve, reject) => {
    let out = ''
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`relay CLI did not start in ${CLI_READY_MS} ms: ${err}`))
    }, CLI_READY_MS)
    child.stdout.on('data', (chunk) => {
      out += chunk.toString()
      // Up to the space after the URL: a read may end inside the port, and a cut-short port
      // can be another server's.
      const m = /ledgerline relay listening on (http:\/\/\S+) \(/.exec(out)
      if (m !== null) {
        clearTimeout(timer)
        resolve(m[1])
      }
    })
    void exited.then((code) => {
      clearTimeout(timer)
      reject(new Error(`relay CLI exited ${code} before it was ready: ${err}`))
    })
  })
  let inspector
  return {
    pid: child.pid,
    httpUrl,
    url: `${httpUrl.replace(/^http/, 'ws')}/sync`,
    port: Number(new URL(httpUrl).port),
    log: () => err,
    /** CPU time (user + system) of the process so far, ms. */
    cpuMs: () => procCpuMs(child.pid),
    /** `ledgerline_appends_total` by status, from /metrics. */
    async appends() {
      const text = await (await fetch(`${httpUrl}/metrics`)).text()
      const out = {}
      for (const m of text.matchAll(/^ledgerline_appends_total\{status="(\w+)"\} (\d+)/gm)) {
        out[m[1]] = Number(m[2])
      }
      return out
    },
    /**
     * Event-loop delay (ms, p99 and max) since the last read: prom-client's default metrics,
     * which reset their histogram at every scrape of /metrics.
     */
    async loopLag() {
      const text = await (await fetch(`${httpUrl}/metrics`)).text()
      const read = (name) =>
        1000 * Number(new RegExp(`^${name} (\\S+)`, 'm').exec(text)?.[1] ?? NaN)
      return {
        p99: read('nodejs_eventloop_lag_p99_seconds'),
        max: read('nodejs_eventloop_lag_max_seconds'),
      }
    },
    /** Pushes answered so far (the count of `ledgerline_append_latency_seconds`). */
    async pushes() {
      const text = await (await fetch(`${httpUrl}/metrics`)).text()
      return Number(
        /^ledgerline_append_latency_seconds_count(?:\{\})? (\d+)/m.exec(text)?.[1] ?? NaN,
      )
    },
    async profileStart() {
      inspector = await openInspector(inspectorUrl)
      await inspector.post('Profiler.enable')
      await inspector.post('Profiler.setSamplingInterval', { interval: PROFILE_INTERVAL_US })
      await inspector.post('Profiler.start')
    },
    /** The profile of the window since `profileStart`, grouped by file, and the raw profile. */
    async profileStop() {
      const { profile } = await inspector.post('Profiler.stop')
      inspector.close()
      inspector = undefined
      return { top: summarizeProfile(profile), profile }
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM')
        const timer = setTimeout(() => child.kill('SIGKILL'), CLI_STOP_MS)
        await exited
        clearTimeout(timer)
      }
      rmSync(dataDir, { recursive: true, force: true })
    },
  }
}

function procCpuMs(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    // utime and stime in USER_HZ ticks (100 per second on Linux).
    return (Number(rest[11]) + Number(rest[12])) * 10
  } catch {
    return Number.NaN
  }
}

/** A Chrome DevTools protocol session over the child's inspector WebSocket. */
async function openInspector(url) {
  if (url === undefined) throw new Error('the relay CLI printed no inspector URL')
  const ws = new WebSocket(url, { perMessageDeflate: false })
  await new Promise((resolve, reject) => {
    ws.once('open', resolve)
    ws.once('error', reject)
  })
  let id = 0
  const waiting = new Map()
  ws.on('message', (data) => {
    const m = JSON.parse(data.toString())
    const w = waiting.get(m.id)
    if (w === undefined) return
    waiting.delete(m.id)
    if (m.error !== undefined) w.reject(new Error(`${m.error.message}`))
    else w.resolve(m.result)
  })
  return {
    post: (method, params = {}) =>
      new Promise((resolve, reject) => {
        id++
        waiting.set(id, { resolve, reject })
        ws.send(JSON.stringify({ id, method, params }))
      }),
    close: () => ws.close(),
  }
}
