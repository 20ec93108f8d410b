// Shared helpers of the benchmark suite: rounds with warm-up, medians, the machine's
// description, and the report (JSON to bench/results/, a table to stdout).
import { execFileSync } from 'node:child_process'
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { chromiumPath } from '../scripts/browser.mjs'

export const BENCH_DIR = dirname(fileURLToPath(import.meta.url))

/**
 * Runs `fn` `warmup` times unmeasured, then `rounds` times, and returns the median and range of
 * what it returns (a number per round, in `unit`).
 */
export async function measure(label, unit, fn, { warmup = 1, rounds = 3 } = {}) {
  for (let i = 0; i < warmup; i++) await fn()
  const values = []
  for (let i = 0; i < rounds; i++) values.push(await fn())
  const sorted = [...values].sort((a, b) => a - b)
  return {
    label,
    unit,
    median: sorted[Math.floor(sorted.length / 2)],
    min: sorted[0],
    max: sorted[sorted.length - 1],
    rounds: values.length,
  }
}

/**
 * The SQLite writers a relay benchmark compares (issue 16: commits on the event loop's thread or
 * in a writer thread), default first; `BENCH_SQLITE_WRITERS=worker` (or `thread`) runs one.
 */
export async function sqliteWriters() {
  const { SQLITE_WRITER_DEFAULT } = await import('@ledgerline/relay')
  const other = SQLITE_WRITER_DEFAULT === 'thread' ? 'worker' : 'thread'
  const wanted = (process.env.BENCH_SQLITE_WRITERS ?? `${SQLITE_WRITER_DEFAULT},${other}`).split(
    ',',
  )
  return { writers: wanted, standard: SQLITE_WRITER_DEFAULT }
}

/** The percentile `p` (0..100) of unsorted numbers. */
export function percentile(values, p) {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[index]
}

let chromiumVersion

/** The machine a report was measured on, with the load average at the time (shared machines). */
export function machine() {
  if (chromiumVersion === undefined) {
    chromiumVersion = 'not installed'
    const path = chromiumPath()
    if (path !== undefined) {
      try {
        chromiumVersion = execFileSync(path, ['--version'], {
          encoding: 'utf8',
          stdio: ['ignore', 'pipe', 'ignore'],
        }).trim()
      } catch {
        chromiumVersion = `${path} (version unknown)`
      }
    }
  }
  return {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    platform: `${os.platform()} ${os.release()}`,
    chromium: chromiumVersion,
    loadavg: os.loadavg().map((l) => Number(l.toFixed(2))),
    date: new Date().toISOString(),
  }
}

/** One line naming the machine, for tables and the summary. */
export function machineLine(m = machine()) {
  return (
    `${m.date.slice(0, 16).replace('T', ' ')} UTC · ${m.cpus} × ${m.cpuModel}, ${m.memoryGiB} GiB · ` +
    `${m.platform} · Node ${m.node} · ${m.chromium} · load avg ${(m.loadavg ?? ['?']).join(' / ')} (1/5/15 min)`
  )
}

/** Sleeps `ms` milliseconds. */
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** A value measured once (a size, a setup figure) in the shape `measure` returns. */
export function single(label, unit, value) {
  return { label, unit, median: value, min: value, max: value, rounds: 1 }
}

/** Prints rows as a table and writes the whole report as JSON. */
export function report(name, rows, notes = []) {
  const m = machine()
  const dir = join(BENCH_DIR, 'results')
  mkdirSync(dir, { recursive: true })
  const file = join(dir, `${name}.json`)
  writeFileSync(file, JSON.stringify({ name, machine: m, rows, notes }, null, 2) + '\n')
  console.log(`\n${formatReport({ name, machine: m, rows, notes })}`)
  console.log(`(JSON: ${file})`)
}

/** A report as Markdown: heading, machine line, table, notes. */
export function formatReport({ name, machine: m, rows, notes }) {
  return [
    `## ${name}`,
    '',
    machineLine(m),
    '',
    formatTable(rows),
    '',
    ...notes.map((n) => `- ${n}`),
    ...verdictLines(name, rows),
  ].join('\n')
}

/**
 * One line per row with a target: the measured figure or ratio, met / not met, and for a target
 * not met what limits it (`row.limit`, from a counter or profile of the same run).
 */
export function verdictLines(name, rows) {
  const lines = rows
    .filter((r) => r.target !== undefined && r.met !== undefined)
    .map((r) => {
      const measured = r.verdict ?? measuredOf(r)
      const limit =
        r.limit === undefined ? '' : r.met ? `; measured: ${r.limit}` : `; limited by: ${r.limit}`
      return `- **${r.met ? 'met' : 'not met'}** ${name}: ${r.label}: ${measured}, target ${r.target}${limit}`
    })
  return lines.length === 0 ? [] : ['', 'Verdicts:', '', ...lines]
}

function measuredOf(r) {
  const ratio = r.ratio ?? ratioOf(r)
  const value = r.ours === undefined ? '' : `${fmt(r.ours.median)} ${r.ours.unit}`
  return ratio === '—' ? value : `${value} (${ratio} ${r.anchor.label})`
}

/**
 * What a profile of a server process says limits a figure: its cores busy (CPU time over wall
 * time) and the largest shares of its self time.
 */
export function profileLimit(what, p, top = 5) {
  const idle = p.top.find((t) => t.group === '(idle)')?.share ?? 0
  const shares = p.top
    .filter((t) => t.group !== '(idle)')
    .slice(0, top)
    .map((t) => `${t.group} ${(t.share * 100).toFixed(0)}%`)
    .join(', ')
  return (
    `${what} busy ${p.busy.toFixed(2)} cores of CPU time, main thread idle ${(idle * 100).toFixed(0)}% ` +
    `of samples; self time: ${shares}`
  )
}

/** CPU time of this (the load) process over a callback, as cores busy. */
export async function loadCpu(fn) {
  const t0 = performance.now()
  const c0 = process.cpuUsage()
  const value = await fn()
  const c = process.cpuUsage(c0)
  return { value, busy: (c.user + c.system) / 1000 / (performance.now() - t0) }
}

export function formatTable(rows) {
  const header = [
    'measure',
    'ours (median)',
    'min–max',
    'anchor / limit (median, min–max)',
    'ours / anchor',
    'target',
    'met',
  ]
  const lines = rows.map((r) => [
    r.label,
    r.ours === undefined ? '—' : `${fmt(r.ours.median)} ${r.ours.unit}`,
    r.ours === undefined ? '—' : `${fmt(r.ours.min)}–${fmt(r.ours.max)}`,
    r.anchor === undefined
      ? '—'
      : `${r.anchor.label}: ${fmt(r.anchor.median)} ${r.anchor.unit}` +
        (r.anchor.min === r.anchor.max ? '' : ` (${fmt(r.anchor.min)}–${fmt(r.anchor.max)})`),
    r.ratio ?? ratioOf(r),
    r.target ?? '—',
    r.met === undefined ? '—' : r.met ? 'yes' : 'NO',
  ])
  const all = [header, ...lines]
  const widths = header.map((_, i) => Math.max(...all.map((l) => String(l[i]).length)))
  const row = (l) => `| ${l.map((c, i) => String(c).padEnd(widths[i])).join(' | ')} |`
  return [
    row(header),
    `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`,
    ...lines.map(row),
  ].join('\n')
}

function ratioOf(r) {
  if (r.ours === undefined || r.anchor === undefined || r.ours.unit !== r.anchor.unit) return '—'
  if (!(r.anchor.median > 0) || !Number.isFinite(r.ours.median)) return '—'
  return `${(r.ours.median / r.anchor.median).toFixed(2)}×`
}

export function fmt(n) {
  if (typeof n !== 'number' || !Number.isFinite(n)) return String(n)
  if (Math.abs(n) >= 100) return Math.round(n).toLocaleString('en-US')
  return n.toFixed(2)
}

/** Median and range of per-round values, in the shape `measure` returns. */
export function summarize(label, unit, values) {
  const sorted = [...values].sort((a, b) => a - b)
  return {
    label,
    unit,
    median: sorted[Math.floor(sorted.length / 2)],
    min: sorted[0],
    max: sorted[sorted.length - 1],
    rounds: values.length,
  }
}

/** p50 with p50–p99 as its range, for latency rows (pooled samples of all rounds). */
export function latencyOf(label, samples) {
  const p50 = percentile(samples, 50)
  const p99 = percentile(samples, 99)
  return { label, unit: 'ms', median: p50, min: p50, max: p99, samples: samples.length }
}

/**
 * Runs `fn` with the CPU time of `server` (a `startServer` child: cores busy, event-loop delay)
 * and of this, the load process, counted over it; the value comes back with `cpu` beside it.
 */
export async function withCpu(server, fn) {
  await server.profileStart({ cpu: false })
  const { value, busy } = await loadCpu(fn)
  const stats = await server.profileStop()
  return { ...value, cpu: { server: stats.busy, loopP99: stats.loopDelay.p99, load: busy } }
}

/** A `withCpu` figure as words: what each process spent, for a "limited by" line. */
export function cpuWords(who, cpu) {
  return (
    `${who} process ${cpu.server.toFixed(2)} cores (event-loop delay p99 ${fmt(cpu.loopP99)} ms), ` +
    `its load clients ${cpu.load.toFixed(2)} cores`
  )
}

/**
 * CPU time (ms, user + system from /proc) of a process and all its descendants, by Chromium
 * process type (`browser` for the root, else its `--type=`); empty off Linux.
 */
export function processTreeCpu(rootPid) {
  const out = {}
  let entries
  try {
    entries = readdirSync('/proc').filter((d) => /^\d+$/.test(d))
  } catch {
    return out
  }
  const procs = new Map()
  for (const pid of entries) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
      // Fields after the command (which may hold spaces) in parentheses.
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8')
      const type = /--type=([a-z-]+)/.exec(cmd)?.[1] ?? 'browser'
      procs.set(Number(pid), {
        ppid: Number(rest[1]),
        ticks: Number(rest[11]) + Number(rest[12]),
        type,
      })
    } catch {
      // The process ended meanwhile.
    }
  }
  const tick = 1000 / 100 // USER_HZ is 100 on Linux
  const inTree = (pid) => {
    for (let p = pid; p > 1; p = procs.get(p)?.ppid ?? 0) if (p === rootPid) return true
    return false
  }
  for (const [pid, p] of procs) {
    if (!inTree(pid)) continue
    out[p.type] = (out[p.type] ?? 0) + p.ticks * tick
  }
  return out
}

/** The difference of two `processTreeCpu` readings, per type. */
export function cpuSince(before, after) {
  const out = {}
  for (const [type, ms] of Object.entries(after)) out[type] = ms - (before[type] ?? 0)
  return out
}

/**
 * The Chromium the browser benches drive, or undefined after reporting `name` as skipped (no
 * Chromium on this machine): one message for every browser bench.
 */
export function chromiumOrSkip(name, chromiumPath) {
  const path = chromiumPath()
  if (path === undefined) {
    report(name, [
      {
        label: "skipped: no Chromium found (install Debian's chromium or set LEDGERLINE_CHROMIUM)",
      },
    ])
  }
  return path
}
