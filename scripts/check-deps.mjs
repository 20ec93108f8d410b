// Enforces the dependency direction of docs/ARCHITECTURE.md: arrows point down only.
// A package may import only the @ledgerline packages listed for it here, and `core`, `protocol`
// and `log` may import no platform module. Tests may also use `testkit` and start a `relay`. The
// TypeScript configs already refuse DOM and Node globals in those three (lib ES2023, types []);
// this catches imports.
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'

const allowed = {
  core: [],
  protocol: ['core'],
  log: ['core', 'protocol'],
  testkit: ['core', 'protocol', 'log'],
  relay: ['core', 'protocol', 'log'],
  client: ['core', 'protocol'],
  yjs: ['core'],
  automerge: ['core'],
  react: ['core', 'client'],
  // The product simulation runs the real client and relay on a simulated world (tests only,
  // private): it is the one package that may import both.
  sim: ['core', 'protocol', 'log', 'testkit', 'client', 'relay'],
}
// Imports erased at compile time (`import type`) that are allowed besides: testkit's contract
// suites name the interfaces whose implementations run them in their tests: `ClientStore` and
// the transport's `WebSocketLike` of client.
const typeOnly = {
  testkit: ['client'],
}
const platformFree = new Set(['core', 'protocol', 'log'])
const platformModules = /^(node:|fs$|path$|os$|crypto$|ws$|idb$|better-sqlite3$|pg$|jose$|pino$)/

let failures = 0
for (const [pkg, deps] of Object.entries(allowed)) {
  for (const file of walk(join('packages', pkg, 'src'))) {
    // Test helpers (`*.test-helper.ts`, never built into dist) count as tests.
    const isTest = /\.test(-helper)?\.ts$/.test(file)
    const text = readFileSync(file, 'utf8')
    const typeSpans = [...text.matchAll(/import\s+type\s[^;']*?from\s*'[^']+'/g)].map((m) => [
      m.index,
      m.index + m[0].length,
    ])
    for (const match of text.matchAll(/(?:from|import)\s*\(?\s*'([^']+)'/g)) {
      const spec = match[1]
      const ours = spec.match(/^@ledgerline\/([^/]+)/)
      if (
        ours &&
        ours[1] !== pkg &&
        !deps.includes(ours[1]) &&
        !(isTest && (ours[1] === 'testkit' || ours[1] === 'relay')) &&
        // Adapter tests bind documents through the real client.
        !(isTest && ours[1] === 'client' && (pkg === 'yjs' || pkg === 'automerge')) &&
        !(
          (typeOnly[pkg] ?? []).includes(ours[1]) &&
          typeSpans.some(([from, to]) => match.index >= from && match.index < to)
        )
      ) {
        console.error(`${file}: ${pkg} must not import @ledgerline/${ours[1]}`)
        failures++
      }
      if (!isTest && platformFree.has(pkg) && platformModules.test(spec)) {
        console.error(`${file}: ${pkg} must stay platform-free, found '${spec}'`)
        failures++
      }
    }
  }
}
if (failures > 0) process.exit(1)
console.log('dependency direction: ok')

function* walk(dir) {
  let names = []
  try {
    names = readdirSync(dir)
  } catch {
    return
  }
  for (const name of names) {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) yield* walk(path)
    else if (path.endsWith('.ts') || path.endsWith('.tsx')) yield path
  }
}
