// Goal: issue 13 case 12 — one client cannot stall the rest: a subscription's catch-up is paced and
// its cost charged to its own connection, so a client that re-subscribes from cursor 0 a few
// hundred times a second (inside the message rate limit) leaves a bystander's acks flowing (on
// 3a8bfae a bystander got 8 acks in 15 s, p99 15 s).
// Method: a relay (the CLI on SQLite, in its own process) whose log holds HISTORY entries of the tenant. The abuser, a raw `ws`
// socket in a child process that never decodes what it gets, says hello and sends `subscribe {scope: ['*'], cursors:
// {}, credit: 1}` 33 at a time every 100 ms (about 330 a second, under RATE_MESSAGES_PER_S); when the relay cuts
// it, it comes back. Meanwhile the bystander pushes ACKS single entries one after another. They
// must all be acked within a liveness bound: BASELINE_FACTOR times what the same ACKS took just
// before the abuse began (a ratio within the run, so a loaded machine slows both sides), and
// never less than ACKS_WITHIN_MS_MIN (some 50 times what they take on an idle relay); the
// latencies are printed.
import { afterEach, describe, expect, it } from 'vitest'
import { spawn } from 'node:child_process'
import { createRequire } from 'node:module'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { makeEntry, pushAcked, startCliRelay, token } from './edges.test-helper.ts'
import { openClient, sleep } from './wire-client.test-helper.ts'

const HISTORY = 20_000
const ACKS = 20
const ACKS_WITHIN_MS_MIN = 15_000
/** Abused acks may take this many times the unabused ones of the same run. */
const BASELINE_FACTOR = 100
/** The bound never exceeds this, so the test ends inside its own timeout. */
const ACKS_WITHIN_MS_MAX = 45_000
/** 33 every 100 ms: about 330 a second, under RATE_MESSAGES_PER_S (500) and its burst. */
const SUBSCRIBES_PER_BURST = 33
const BURST_EVERY_MS = 100

const cleanups: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

describe('issue 13 case 12: catch-up is charged to its connection', () => {
  it("keeps a bystander's acks flowing while another client re-subscribes from zero in a loop", async () => {
    // The relay in its own process: starved, it must not starve this test's timers too.
    const dataDir = mkdtempSync(join(tmpdir(), 'll-fairness-'))
    cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }))
    const relay = await startCliRelay({ dataDir })
    cleanups.push(() => relay.stop('SIGKILL'))
    const writerId = 'e1'.repeat(16)
    const writer = await openClient(relay.url, { clientId: writerId })
    cleanups.push(() => writer.close())
    expect((await writer.hello(await token({ sub: 'writer' }))).type).toBe('welcome')
    for (let from = 0; from < HISTORY; from += 500) {
      const entries = Array.from({ length: 500 }, (_, i) =>
        makeEntry(writerId, from + i + 1, `order/h${(from + i) % 500}`, 'order.line', {
          n: from + i,
        }),
      )
      await pushAcked(writer, from / 500 + 1, entries)
    }
    writer.close()

    const bystanderId = 'b7'.repeat(16)
    const bystander = await openClient(relay.url, { clientId: bystanderId })
    cleanups.push(() => bystander.close())
    expect((await bystander.hello(await token({ sub: 'bystander' }))).type).toBe('welcome')
    const pushSingles = async (first: number, withinMs: number): Promise<number[]> => {
      const started = Date.now()
      const latencies: number[] = []
      for (let n = first; n < first + ACKS && Date.now() - started < withinMs; n++) {
        const t0 = Date.now()
        const [result] = await pushAcked(bystander, n, [
          makeEntry(bystanderId, n, 'order/bystander', 'order.line', { n }),
        ]).catch(() => [undefined])
        if (result?.status === 'appended') latencies.push(Date.now() - t0)
      }
      return latencies
    }
    const t0 = Date.now()
    expect(await pushSingles(1, ACKS_WITHIN_MS_MAX)).toHaveLength(ACKS)
    const baselineMs = Date.now() - t0
    const withinMs = Math.min(
      ACKS_WITHIN_MS_MAX,
      Math.max(ACKS_WITHIN_MS_MIN, BASELINE_FACTOR * baselineMs),
    )

    const abuser = startAbuser(relay.url, await token({ sub: 'abuser' }))
    cleanups.push(async () => void (await abuser.stop()))
    await sleep(500) // the abuse is in full swing
    const latencies = await pushSingles(ACKS + 1, withinMs)
    const subscribes = await abuser.stop()
    process.stdout.write(
      `[measure] bystander: ${ACKS} acks in ${baselineMs} ms alone; under ${subscribes} ` +
        `re-subscribes (ms): ${latencies.join(', ')}\n`,
    )
    expect(latencies.length, `bystander acks within ${withinMs} ms`).toBe(ACKS)
  }, 120_000)
})

/**
 * The abuser, in its own process as a real client would be (in this process it would be slowed
 * down by the relay it slows down): a raw socket that says hello and then re-subscribes from zero
 * in bursts, reconnecting whenever the relay cuts it. `stop` kills it (by pid) and tells how many
 * subscribes it sent.
 */
function startAbuser(url: string, tok: string): { stop(): Promise<number> } {
  const require = createRequire(import.meta.url)
  const ws = pathToFileURL(require.resolve('ws')).href
  const protocol = pathToFileURL(require.resolve('@ledgerline/protocol')).href
  const script = `
import WebSocket from ${JSON.stringify(ws)}
import { encodeMessage, PROTOCOL_VERSION } from ${JSON.stringify(protocol)}
const [url, token] = process.argv.slice(1)
const hello = encodeMessage({ type: 'hello', protocol: PROTOCOL_VERSION, token, clientId: 'ab'.repeat(16) })
const subscribe = encodeMessage({ type: 'subscribe', sub: 1, scope: ['*'], cursors: {}, credit: 1 })
let sent = 0
process.on('SIGTERM', () => { process.stdout.write(String(sent)); process.exit(0) })
function connect() {
  const socket = new WebSocket(url, { perMessageDeflate: false })
  let timer
  socket.on('error', () => {})
  socket.on('open', () => {
    socket.send(hello)
    timer = setInterval(() => {
      for (let i = 0; i < ${SUBSCRIBES_PER_BURST}; i++) socket.send(subscribe)
      sent += ${SUBSCRIBES_PER_BURST}
    }, ${BURST_EVERY_MS})
  })
  socket.on('close', () => { clearInterval(timer); setTimeout(connect, 50) })
}
connect()
`
  const child = spawn(process.execPath, ['--input-type=module', '-e', script, url, tok], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  let out = ''
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()))
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  let stopped: Promise<number> | undefined
  return {
    stop: () =>
      (stopped ??= (async () => {
        if (child.exitCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGTERM')
        await exited
        return Number(out) || 0
      })()),
  }
}
