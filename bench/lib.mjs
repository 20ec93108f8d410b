// Shared helpers of the benchmark suite: rounds with warm-up, medians, the machine's
// description, and the report (JSON to bench/results/, a table to stdout).
import { execFileSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
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

/** The percentile `p` (0..100) of unsorted numbers. */
export function percentile(values, p) {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[index]
}

export function machine() {
  let chromium = 'not installed'
  const path = chromiumPath()
  if (path !== undefined) {
    try {
      chromium = execFileSync(path, ['--version'], { encoding: 'utf8' }).trim()
    } catch {
      chromium = `${path} (version unknown)`
    }
  }
  return {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    platform: `${os.platform()} ${os.release()}`,
    chromium,
    date: new Date().toISOString(),
  }
}

/** Prints rows as a table and writes the whole report as JSON. */
export function report(name, rows, notes = []) {
  const m = machine()
  const dir = join(BENCH_DIR, 'results')
  mkdirSync(dir, { recursive: true })
  const file = join(dir, `${name}.json`)
  writeFileSync(file, JSON.stringify({ name, machine: m, rows, notes }, null, 2) + '\n')
  console.log(`\n## ${name}  (${m.cpus} CPUs, ${m.memoryGiB} GiB, Node ${m.node}, ${m.chromium})`)
  console.log(formatTable(rows))
  for (const note of notes) console.log(`- ${note}`)
  console.log(`(JSON: ${file})`)
}

export function formatTable(rows) {
  const header = ['measure', 'ours (median)', 'min–max', 'anchor / limit', 'target', 'met']
  const lines = rows.map((r) => [
    r.label,
    r.ours === undefined ? '—' : `${fmt(r.ours.median)} ${r.ours.unit}`,
    r.ours === undefined ? '—' : `${fmt(r.ours.min)}–${fmt(r.ours.max)}`,
    r.anchor === undefined ? '—' : `${fmt(r.anchor.median)} ${r.anchor.unit} (${r.anchor.label})`,
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

function fmt(n) {
  if (typeof n !== 'number' || !Number.isFinite(n)) return String(n)
  if (Math.abs(n) >= 100) return Math.round(n).toLocaleString('en-US')
  return n.toFixed(2)
}
