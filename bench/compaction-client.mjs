// Compaction, the client side (issue 17; `benches/compaction.mjs` runs it after the relay's
// part, as report `compaction-client`): a fresh register in headless Chromium (a persistent
// profile on disk) bootstraps a scope of 20,000 entities with 1,000,000 entries of history from
// the relay's ledger snapshots; the same run measures a full replay of the same log (the same
// client made to subscribe without `bootstrap`). Ready = createClient on a fresh database to
// synced(); then every entity's confirmed state and version is checked against the server's
// (folded here while the log was written), untimed. Bytes = what the register's socket
// received. The relay runs in this process on a SQLite log on disk, filled and snapshotted
// beforehand (its snapshot walk, not measured).
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium } from 'playwright-core'
import WebSocket from 'ws'
import { createHlcClock, defineEntity, defineSchema, entryId } from '@ledgerline/core'
import { decodeMessage, encodeMessage, PROTOCOL_VERSION } from '@ledgerline/protocol'
import { createRelay, createSqliteStore, signToken } from '@ledgerline/relay'
import { CHROMIUM_ARGS, chromiumPath } from '../scripts/browser.mjs'
import { chromiumOrSkip, fmt, report, summarize } from './lib.mjs'
import { servePage } from './page-server.mjs'

const SECRET = 'bench-secret-bench-secret-bench-secret'
const ENTITIES = Number(process.env.COMPACTION_ENTITIES ?? 20_000)
const ENTRIES = Number(process.env.COMPACTION_ENTRIES ?? 1_000_000)
const BOOT_ROUNDS = 2
const BOOT_TIMEOUT_MS = 300_000
/** The full replay's bound (it may not finish at 1,000,000 entries on a loaded machine). */
const FULL_TIMEOUT_MS = Number(process.env.COMPACTION_FULL_TIMEOUT_MS ?? 900_000)
const READY_MS_TARGET = 2_000
/** The relay's catch-up budget for the extra round (entries/s and burst): in effect none. */
const UNBUDGETED = 100_000_000
const BYTES_SHARE_TARGET = 0.1
/** How long past its bound the browser's full replay may go unanswered before its page closes. */
const FULL_UNANSWERED_MS = 30_000
/** The wire replay's credit window (pages in flight), as a client's. */
const WIRE_CREDIT = 16
const WIRE_TIMEOUT_MS = 600_000

// The page's schema, for the relay (the same `item` type and reduce).
const schema = defineSchema(
  defineEntity({
    type: 'item',
    initial: { n: 0, sum: 0 },
    reduce: (s, e) => ({ n: s.n + 1, sum: s.sum + e.data.qty }),
  }),
)

export async function runClientPart() {
  const path = chromiumOrSkip('compaction-client', chromiumPath)
  if (path === undefined) return
  const tmp = mkdtempSync(join(tmpdir(), 'll-bench-compaction-'))
  let server, relay, context
  try {
    const dataDir = join(tmp, 'relay')
    const t0 = performance.now()
    const truth = await populate(dataDir)
    const populateS = (performance.now() - t0) / 1000
    server = await servePage('compaction-page.js')
    /** The relay on the bench's log, answering the page's origin; `limits` as given. */
    const startRelay = (limits) =>
      createRelay({
        port: 0,
        dataDir,
        schema,
        auth: { secret: SECRET },
        logLevel: 'silent',
        allowedOrigins: [server.origin],
        ...(limits === undefined ? {} : { limits }),
      })
    relay = await startRelay(undefined)
    const t1 = performance.now()
    const walked = await relay.ledgerSnapshots?.walk()
    const walkS = (performance.now() - t1) / 1000
    console.log(
      `  log: ${ENTRIES.toLocaleString('en-US')} entries over ${ENTITIES.toLocaleString('en-US')} entities written in ${populateS.toFixed(1)} s; snapshot walk ${walkS.toFixed(1)} s (${JSON.stringify(walked)})`,
    )
    const token = await signToken({
      secret: SECRET,
      tenant: 'bench',
      sub: 'bench',
      read: ['*'],
      write: ['*'],
    })
    context = await chromium.launchPersistentContext(join(tmp, 'profile'), {
      executablePath: path,
      args: CHROMIUM_ARGS,
      headless: true,
    })
    const openPage = async () => {
      const opened = await context.newPage()
      await opened.goto(server.origin)
      await opened.waitForFunction(() => globalThis.bench !== undefined)
      return opened
    }
    let page = await openPage()
    const names = Array.from({ length: ENTITIES }, (_, i) => `item/e${i}`)
    let dbs = 0
    const boot = async (full, timeoutMs) => {
      const dbName = `bench-${++dbs}`
      try {
        const args = { url: relay.url, token, dbName, timeoutMs, full, entities: names }
        const result = await page.evaluate((a) => globalThis.bench.boot(a), args)
        return { ...result, wrong: wrongStates(result.states, truth) }
      } finally {
        await page.evaluate((n) => globalThis.bench.wipe(n), [dbName])
      }
    }
    const boots = []
    for (let r = 0; r < BOOT_ROUNDS; r++) {
      const b = await boot(false, BOOT_TIMEOUT_MS)
      boots.push(b)
      console.log(
        `  bootstrap round ${r + 1}: ready ${b.ms.toFixed(0)} ms, ${b.bytes.toLocaleString('en-US')} bytes in ${b.frames} frames; checked ${b.states.length} entities (${b.wrong} wrong) in ${b.checkMs.toFixed(0)} ms; first entity held from version ${b.first.from}; frames at (ms) ${JSON.stringify(b.marks)}`,
      )
    }
    // The full replay's bytes on the wire, by a socket that stores nothing (the browser's full
    // replay below may not finish in its bound: storing 1,000,000 entries is its cost, not the
    // bytes'). The same relay, token and scope; every entry of the scope from cursor 0 to live.
    const wire = await wireReplay(relay.url, token)
    console.log(
      `  full replay on the wire (nothing stored): ${fmt(wire.entries)} entries, ${fmt(wire.bytes)} bytes in ${wire.frames} frames, live at ${wire.ms.toFixed(0)} ms`,
    )
    // The browser's full replay, bounded here too: its `synced()` bound has been seen to pass
    // without an answer (the page busy storing pages), so past it the page is closed and a new
    // one serves the next round.
    let bound
    const full = await Promise.race([
      boot(true, FULL_TIMEOUT_MS),
      new Promise((_, reject) => {
        bound = setTimeout(
          () => reject(new Error(`no answer ${FULL_UNANSWERED_MS / 1000} s past its bound`)),
          FULL_TIMEOUT_MS + FULL_UNANSWERED_MS,
        )
      }),
    ])
      .catch(async (error) => {
        console.log(`  full replay: ${error.message.slice(0, 200)}`)
        await page.close().catch(() => undefined)
        page = await openPage()
        return undefined
      })
      .finally(() => clearTimeout(bound))
    if (full !== undefined)
      console.log(
        `  full replay: ready ${full.ms.toFixed(0)} ms, ${full.bytes.toLocaleString('en-US')} bytes in ${full.frames} frames; checked ${full.states.length} entities (${full.wrong} wrong); frames at (ms) ${JSON.stringify(full.marks)}`,
      )
    // Where a bootstrap's time goes: the client had stored every snapshot by `snapshotsLast`;
    // the live page comes once the relay has passed the entries it leaves out (read or not, they
    // would be charged to the connection's catch-up budget). One more round with that budget
    // raised, to show it no longer matters.
    await relay.close()
    relay = await startRelay({ catchUpEntriesPerS: UNBUDGETED, catchUpEntriesBurst: UNBUDGETED })
    const raised = await boot(false, BOOT_TIMEOUT_MS)
    console.log(
      `  bootstrap, catch-up budget raised: ready ${raised.ms.toFixed(0)} ms (${raised.wrong} wrong); frames at (ms) ${JSON.stringify(raised.marks)}`,
    )
    const median = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]
    const stored = median(boots.map((b) => b.marks.snapshotsLast ?? Number.NaN))
    const live = median(boots.map((b) => b.marks.live ?? Number.NaN))
    const ready = summarize(
      'bootstrap',
      's',
      boots.map((b) => b.ms / 1000),
    )
    const bytes = summarize(
      'bootstrap',
      'MB',
      boots.map((b) => b.bytes / 1e6),
    )
    const share = bytes.median / (wire.bytes / 1e6)
    const unfinished = `did not finish within ${FULL_TIMEOUT_MS / 1000} s (COMPACTION_FULL_TIMEOUT_MS)`
    const correct = boots.every((b) => b.wrong === 0 && b.states.length === ENTITIES)
    report(
      'compaction-client',
      [
        {
          label: `fresh register, ${ENTITIES.toLocaleString('en-US')} entities / ${ENTRIES.toLocaleString('en-US')} entries: ready (s)`,
          ours: ready,
          ...(full === undefined
            ? {}
            : { anchor: summarize('full replay', 's', [full.ms / 1000]) }),
          target: `< ${READY_MS_TARGET / 1000} s, every entity's confirmed state correct`,
          met: ready.median * 1000 < READY_MS_TARGET && correct,
          limit: `checked every entity against the server after each boot: ${boots.map((b) => b.wrong).join(', ')} wrong; full replay ${full === undefined ? unfinished : `${full.wrong} wrong`}`,
        },
        {
          label: 'bytes downloaded (MB)',
          ours: bytes,
          anchor: summarize('full replay on the wire', 'MB', [wire.bytes / 1e6]),
          target: `< ${BYTES_SHARE_TARGET * 100} % of a full replay`,
          met: share < BYTES_SHARE_TARGET,
          limit: `${(share * 100).toFixed(2)} % of the full replay's ${fmt(wire.bytes / 1e6)} MB (${fmt(wire.entries)} entries to live, read by a socket that stores nothing, in ${(wire.ms / 1000).toFixed(1)} s)${full === undefined ? '' : `; the browser's full replay received ${fmt(full.bytes / 1e6)} MB`}`,
        },
        {
          label: 'bootstrap: live page received at (ms after createClient, median)',
          ours: { unit: 'ms', median: live, min: live, max: live },
          limit: `the last snapshots page came at ${stored} ms (median); the relay then passes the entries the snapshots hold without reading them (subscriptions.ts invariant 7) and reads only those after them`,
        },
        {
          label: "bootstrap with the relay's catch-up budget raised: ready (s, 1 round)",
          ours: summarize('raised', 's', [raised.ms / 1000]),
          limit: `${raised.wrong} wrong of ${raised.states.length}; snapshots stored by ${raised.marks.snapshotsLast} ms, live at ${raised.marks.live} ms`,
        },
      ],
      [
        `headless Chromium, persistent profile on disk; ${BOOT_ROUNDS} bootstrap rounds, each a fresh database, then one full replay (the same client, subscribing without bootstrap)`,
        `the relay runs in the bench process (SQLite on disk, default page limits); its log was filled (${populateS.toFixed(1)} s) and snapshotted by its walk (${walkS.toFixed(1)} s) beforehand, not measured`,
        'ready: createClient on a fresh database → synced(); bytes: what the register socket received (frames as sent)',
      ],
    )
  } finally {
    await context?.close().catch(() => undefined)
    await relay?.close()
    await server?.close()
    rmSync(tmp, { recursive: true, force: true })
  }
}

/**
 * A full replay as the relay sends it: hello, subscribe to every entity from cursor 0 without
 * `bootstrap`, credit given back page by page (WIRE_CREDIT in flight), until the live page.
 * Answers the bytes and frames received, the entries, and the time to live.
 */
async function wireReplay(url, token) {
  const ws = new WebSocket(url, { perMessageDeflate: false })
  await new Promise((resolve, reject) => {
    ws.once('open', resolve)
    ws.once('error', reject)
  })
  try {
    const t0 = performance.now()
    let bytes = 0
    let frames = 0
    let entries = 0
    return await new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`wire replay not live in ${WIRE_TIMEOUT_MS} ms`)),
        WIRE_TIMEOUT_MS,
      )
      ws.on('message', (data) => {
        bytes += data.byteLength
        frames++
        const m = decodeMessage(new Uint8Array(data))
        if (m.type === 'welcome') {
          ws.send(
            encodeMessage({
              type: 'subscribe',
              sub: 1,
              scope: ['*'],
              cursors: {},
              credit: WIRE_CREDIT,
            }),
          )
        } else if (m.type === 'entries') {
          entries += m.entries.length
          if (m.live) {
            clearTimeout(timer)
            resolve({ bytes, frames, entries, ms: performance.now() - t0 })
          } else ws.send(encodeMessage({ type: 'credit', sub: 1, pages: 1 }))
        } else if (m.type === 'error') {
          clearTimeout(timer)
          reject(new Error(JSON.stringify(m)))
        }
      })
      ws.send(
        encodeMessage({
          type: 'hello',
          protocol: PROTOCOL_VERSION,
          token,
          clientId: 'c'.repeat(32),
        }),
      )
    })
  } finally {
    ws.close()
  }
}

/** Fills a SQLite log with ENTRIES entries over ENTITIES entities; answers each one's fold. */
async function populate(dir) {
  mkdirSync(dir, { recursive: true })
  const store = await createSqliteStore({ file: join(dir, 'log.sqlite') })
  const truth = new Map()
  try {
    const clientId = 'f'.repeat(32)
    const clock = createHlcClock(clientId, () => Date.now())
    for (let from = 1; from <= ENTRIES; from += 5_000) {
      const items = []
      for (let seq = from; seq < from + 5_000 && seq <= ENTRIES; seq++) {
        const entity = `item/e${seq % ENTITIES}`
        const qty = (seq % 7) + 1
        const t = truth.get(entity) ?? { n: 0, sum: 0 }
        truth.set(entity, { n: t.n + 1, sum: t.sum + qty })
        items.push({
          entry: {
            id: entryId(clientId, seq),
            tenant: 'bench',
            entity,
            kind: 'item.moved',
            data: { qty, note: 'x'.repeat(40) },
            intent: 'fact',
            clientId,
            clientSeq: seq,
            hlc: clock.tick(),
            occurredAt: Date.now(),
          },
        })
      }
      await store.append('bench', items)
    }
  } finally {
    await store.close()
  }
  return truth
}

/** How many of `states` ([entity, confirmed, version]) differ from the server's fold. */
function wrongStates(states, truth) {
  let wrong = 0
  for (const [entity, confirmed, version] of states) {
    const t = truth.get(entity)
    if (t === undefined || confirmed.n !== t.n || confirmed.sum !== t.sum || version !== t.n)
      wrong++
  }
  return wrong + Math.max(0, truth.size - states.length)
}
