// `npm run bench` runs every benchmark; `npm run bench -- <name> [<name>…]` runs some.
// Each benchmark lives in benches/<name>.mjs and exports `run()`, which measures our figure and,
// in the same run, the anchor or physical limit for the same work, then calls `report()`.
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { BENCH_DIR } from './lib.mjs'

const available = readdirSync(join(BENCH_DIR, 'benches'))
  .filter((f) => f.endsWith('.mjs'))
  .map((f) => f.slice(0, -4))
  .sort()
const asked = process.argv.slice(2).filter((a) => !a.startsWith('-'))
const unknown = asked.filter((a) => !available.includes(a))
if (unknown.length > 0) {
  console.error(`unknown benchmark: ${unknown.join(', ')}; available: ${available.join(', ')}`)
  process.exit(2)
}
const chosen = asked.length > 0 ? asked : available
const started = Date.now()
let failed = 0
for (const name of chosen) {
  const t0 = Date.now()
  try {
    const mod = await import(pathToFileURL(join(BENCH_DIR, 'benches', `${name}.mjs`)).href)
    await mod.run()
  } catch (error) {
    failed++
    console.error(`benchmark ${name} failed:`, error)
  }
  console.log(`(${name}: ${((Date.now() - t0) / 1000).toFixed(1)} s)`)
}
console.log(`\nall done in ${((Date.now() - started) / 1000).toFixed(1)} s`)
process.exit(failed > 0 ? 1 : 0)
