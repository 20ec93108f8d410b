// Goal: Ledgerline installs and runs outside this repository, as an app would use it. Every
// public package packs into a tarball that is fit to publish (exports with types, README,
// LICENSE, no tests, every import of its code declared as a dependency, all at one version);
// the stock example installs those tarballs (not the workspace) into a directory of its own,
// type-checks and builds; `npx ledgerline-relay` from that install serves it with the example's
// TypeScript schema; and two devices in headless Chromium share one stock item through it: a
// wrong quantity is refused on the device with a typed `invalid`, two moves past zero get the
// relay's `stock.oversold` correction, and the other device sees the same count.
// Method: `npm pack` of the workspaces into a temp directory; a copy of examples/stock in the
// system temp directory (so nothing resolves up into this repository's node_modules) whose
// package.json points every @ledgerline package at its tarball; `npm install --prefer-offline
// --ignore-scripts` from npm's cache (the root `npm ci` filled it), with the one native addon
// (better-sqlite3, same version) copied from the root install instead of compiled again;
// Chromium via playwright-core. Temp directories and the relay's process group are removed
// afterwards, also on failure.
import { execFile, spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { builtinModules } from 'node:module'
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

const run = promisify(execFile)
const ROOT = fileURLToPath(new URL('..', import.meta.url))
const EXAMPLE = join(ROOT, 'examples/stock')
const PACKAGES = ['core', 'protocol', 'log', 'client', 'relay', 'yjs', 'automerge', 'react']
const STEP_MS_MAX = 180_000

const browserModule = new URL('../scripts/browser.mjs', import.meta.url).href
const { chromiumPath, CHROMIUM_ARGS } = (await import(browserModule)) as {
  chromiumPath(): string | undefined
  CHROMIUM_ARGS: string[]
}

interface Packed {
  readonly name: string
  readonly version: string
  readonly filename: string
  readonly files: readonly { readonly path: string }[]
}

let temp = ''
let packed: Packed[] = []
let relay: ChildProcess | undefined
let browser: Browser | undefined

beforeAll(async () => {
  temp = mkdtempSync(join(tmpdir(), 'll-examples-'))
  for (const p of PACKAGES) {
    if (!existsSync(join(ROOT, 'packages', p, 'dist/index.js'))) {
      throw new Error(`packages/${p}/dist is missing: run \`npm run build\` first`)
    }
  }
  const args = ['pack', '--json', '--pack-destination', join(temp, 'tarballs')]
  mkdirSync(join(temp, 'tarballs'))
  for (const p of PACKAGES) args.push('-w', `packages/${p}`)
  const { stdout } = await run('npm', args, { cwd: ROOT, maxBuffer: 64 * 1024 * 1024 })
  packed = JSON.parse(stdout) as Packed[]
}, STEP_MS_MAX)

afterAll(async () => {
  await browser?.close()
  await stopRelay()
  if (temp !== '') rmSync(temp, { recursive: true, force: true })
})

describe('the packed packages', () => {
  // Each check lists what is wrong per package, so a failure names the package and the problem.
  const none = () => Object.fromEntries(packed.map((p) => [p.name, []]))

  it('carry exports with types, README, LICENSE and no tests, at one version', () => {
    expect(packed.map((p) => p.name)).toEqual(PACKAGES.map((p) => `@ledgerline/${p}`))
    expect(Object.fromEntries(packed.map((p) => [p.name, packageProblems(p)]))).toEqual(none())
  })

  it('declare every package their code imports', () => {
    expect(Object.fromEntries(packed.map((p) => [p.name, undeclaredImports(p)]))).toEqual(none())
  })
})

describe('examples/stock, installed from the tarballs', () => {
  const app = () => join(temp, 'app')

  it(
    'installs, imports every package, type-checks and builds',
    async () => {
      cpSync(EXAMPLE, app(), {
        recursive: true,
        filter: (src) => !/[/\\](node_modules|dist|ledgerline-data)([/\\]|$)/.test(src),
      })
      const manifest = readJson(join(app(), 'package.json'))
      const tarballs: Record<string, string> = {}
      for (const p of packed) tarballs[p.name] = `file:${join(temp, 'tarballs', p.filename)}`
      // Every tarball, not only those the example imports, so each one installs and loads once.
      manifest.dependencies = { ...manifest.dependencies, ...tarballs }
      // Their dependencies on each other resolve to the tarballs too, never to a registry.
      manifest.overrides = tarballs
      writeFileSync(join(app(), 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`)
      await run(
        'npm',
        ['install', '--prefer-offline', '--ignore-scripts', '--no-audit', '--no-fund'],
        { cwd: app(), maxBuffer: 16 * 1024 * 1024 },
      )
      copyNativeAddon('better-sqlite3', 'build/Release/better_sqlite3.node')
      for (const p of packed) {
        const installed = readJson(join(app(), 'node_modules', p.name, 'package.json'))
        expect(installed.version).toBe(p.version)
        // Installed from the tarball: a real directory, not a link into this repository.
        expect(readdirSync(join(app(), 'node_modules', p.name))).toContain('LICENSE')
      }
      const imports = packed.map((p) => `await import('${p.name}')`).join('; ')
      await run(process.execPath, ['--input-type=module', '-e', imports], { cwd: app() })
      await run('npm', ['run', 'build'], { cwd: app(), maxBuffer: 16 * 1024 * 1024 })
      expect(existsSync(join(app(), 'dist/index.html'))).toBe(true)
    },
    STEP_MS_MAX,
  )

  it(
    'runs on npx ledgerline-relay with its TypeScript schema, two devices in Chromium',
    async () => {
      expect(existsSync(join(app(), 'dist/index.html')), 'the build step ran').toBe(true)
      const base = await startRelay(app())
      const executablePath = chromiumPath()
      const { chromium } = await import('playwright-core')
      browser = await chromium.launch({
        ...(executablePath === undefined ? {} : { executablePath }),
        args: CHROMIUM_ARGS,
        headless: true,
      })
      const till1 = await openDevice(browser, `${base}/?device=till-1`)
      const till2 = await openDevice(browser, `${base}/?device=till-2`)

      // Refused on the device by the kind's validator, with a typed error; nothing appended.
      await record(till1, '1.5')
      await till1.getByTestId('problem').waitFor()
      expect(await till1.getByTestId('problem').textContent()).toMatch(
        /^invalid: stock\/hand-grinder: stock\.moved data\.qty: a quantity is a whole number/,
      )
      // Two sales of the one grinder nobody received: both stand, the relay corrects the second.
      await record(till1, '-1')
      await waitForText(till1, 'on-hand', '-1')
      await record(till2, '-1')
      await waitForText(till2, 'on-hand', '-2')
      await waitForText(till1, 'on-hand', '-2')
      await till2
        .getByTestId('corrections')
        .getByText(/^stock\.oversold: /)
        .waitFor()
      for (const page of [till1, till2]) await waitForText(page, 'pending', '0')
    },
    STEP_MS_MAX,
  )
})

/** What keeps a packed package from being published as it is. */
function packageProblems(p: Packed): string[] {
  const root = readJson(join(ROOT, 'package.json'))
  const manifest = readJson(join(packageDir(p), 'package.json'))
  const files = new Set(p.files.map((f) => f.path))
  const exported = manifest.exports?.['.'] as { types?: string; default?: string } | undefined
  const problems: string[] = []
  const check = (ok: boolean, problem: string) => {
    if (!ok) problems.push(problem)
  }
  check(p.version === root.version, `version ${p.version}, not ${String(root.version)}`)
  check(manifest.private === undefined, 'private')
  check(manifest.license === 'Apache-2.0', `license ${String(manifest.license)}`)
  check(manifest.engines?.node === root.engines?.node, 'engines.node differs from the root')
  check((manifest.repository?.url ?? '').startsWith('git+https://'), 'no repository url')
  for (const file of ['package.json', 'README.md', 'LICENSE']) check(files.has(file), `no ${file}`)
  for (const file of [exported?.types, exported?.default]) {
    check(
      file !== undefined && files.has(file.replace(/^\.\//, '')),
      `exports names ${file}, not packed`,
    )
  }
  for (const file of files) {
    check(!/\.test\.|test-helper|type-test|fixtures\/|tsbuildinfo/.test(file), `packs ${file}`)
  }
  for (const [dep, range] of Object.entries(manifest.dependencies ?? {})) {
    check(!dep.startsWith('@ledgerline/') || range === root.version, `${dep}@${range}`)
  }
  return problems
}

/**
 * Every bare import in the packed JavaScript that is neither a Node built-in, the package
 * itself, nor one of its dependencies or peer dependencies.
 */
function undeclaredImports(p: Packed): string[] {
  const builtins = new Set(builtinModules)
  const manifest = readJson(join(packageDir(p), 'package.json'))
  const declared = new Set([
    p.name,
    ...Object.keys(manifest.dependencies ?? {}),
    ...Object.keys(manifest.peerDependencies ?? {}),
  ])
  const missing = new Set<string>()
  for (const file of p.files.map((f) => f.path).filter((f) => /\.(js|mjs)$/.test(f))) {
    const text = readFileSync(join(packageDir(p), file), 'utf8')
    for (const m of text.matchAll(/(?:from|import)\s*\(?\s*['"]([^'"./][^'"]*)['"]/g)) {
      const spec = m[1] as string
      if (spec.startsWith('node:') || builtins.has(spec.split('/')[0] as string)) continue
      const parts = spec.split('/')
      const name = spec.startsWith('@') ? parts.slice(0, 2).join('/') : (parts[0] as string)
      if (!declared.has(name)) missing.add(`${file}: ${spec}`)
    }
  }
  return [...missing]
}

function packageDir(p: Packed): string {
  return join(ROOT, 'packages', p.name.replace('@ledgerline/', ''))
}

/** Starts `npx ledgerline-relay` in `dir`, serving its build; resolves with its http URL. */
async function startRelay(dir: string): Promise<string> {
  const args = ['ledgerline-relay', '--dev', '--port', '0', '--data', join(dir, 'ledgerline-data')]
  args.push('--schema', './src/schema.ts', '--static', './dist')
  // Its own process group: npx runs the relay as a child, and stopping must reach both.
  const child = spawn('npx', args, { cwd: dir, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
  relay = child
  let out = ''
  let err = ''
  child.stderr?.on('data', (chunk: Buffer) => (err = (err + chunk.toString()).slice(-8000)))
  return await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`relay did not start: ${err}`)), 60_000)
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString()
      const m = /ledgerline relay listening on (http:\/\/[^\s]+)/.exec(out)
      if (m !== null) {
        clearTimeout(timer)
        resolve(m[1] as string)
      }
    })
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`relay exited ${String(code)} before it was ready: ${err}`))
    })
  })
}

async function stopRelay(): Promise<void> {
  const child = relay
  relay = undefined
  if (child?.pid === undefined || child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  process.kill(-child.pid, 'SIGTERM')
  const timer = setTimeout(() => {
    if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL')
  }, 10_000)
  await exited
  clearTimeout(timer)
}

async function openDevice(b: Browser, url: string): Promise<Page> {
  const page = await (await b.newContext()).newPage()
  await page.goto(url)
  await page
    .getByTestId('status')
    .getByText(/^online/)
    .waitFor({ timeout: 30_000 })
  return page
}

async function record(page: Page, qty: string): Promise<void> {
  await page.getByTestId('qty').fill(qty)
  await page.getByTestId('move').click()
}

async function waitForText(page: Page, testId: string, text: string): Promise<void> {
  await page.getByTestId(testId).getByText(text, { exact: true }).waitFor({ timeout: 30_000 })
}

/**
 * Installs without scripts skip the native addon's build (its prebuilt binaries cannot be
 * downloaded here and compiling takes a minute); the root install built the same version.
 */
function copyNativeAddon(name: string, file: string): void {
  const from = join(ROOT, 'node_modules', name)
  const to = join(temp, 'app/node_modules', name)
  expect(readJson(join(to, 'package.json')).version).toBe(
    readJson(join(from, 'package.json')).version,
  )
  mkdirSync(dirname(join(to, file)), { recursive: true })
  cpSync(join(from, file), join(to, file))
}

interface Manifest {
  version?: string
  private?: boolean
  license?: string
  engines?: { node?: string }
  repository?: { url?: string }
  exports?: Record<string, unknown>
  dependencies?: Record<string, string>
  peerDependencies?: Record<string, string>
  overrides?: Record<string, string>
}

function readJson(path: string): Manifest {
  return JSON.parse(readFileSync(path, 'utf8')) as Manifest
}
