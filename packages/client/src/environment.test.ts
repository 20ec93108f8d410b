// Goal: the client takes everything from its environment through `environment.ts`: no other
// source file reads a host global (timers, Date, crypto, navigator, indexedDB, WebSocket,
// BroadcastChannel, addEventListener), so a simulation's world reaches every corner; and the
// defaults are the host's own while `null` turns a piece off.
// Method: scan the package's non-test sources for host globals; resolve an environment with
// nothing, with everything, and with `null`s.
import { readdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'
import { describe, expect, it } from 'vitest'
import type { ClientNetwork, PersistentStorage } from './environment.ts'
import { randomFloat, realScheduler, resolveEnvironment, timersClock } from './environment.ts'
import { sleep } from './scheduler.ts'
import type { Scheduler } from './scheduler.ts'

/** Host globals a client module could read at run time instead of taking them injected. */
const HOST_GLOBALS = new Set([
  'setTimeout',
  'setInterval',
  'clearTimeout',
  'clearInterval',
  'queueMicrotask',
  'setImmediate',
  'requestAnimationFrame',
  'Date',
  'performance',
  'crypto',
  'navigator',
  'globalThis',
  'window',
  'self',
  'location',
  'indexedDB',
  'IDBKeyRange',
  'WebSocket',
  'BroadcastChannel',
  'addEventListener',
  'removeEventListener',
])

/**
 * Every value use of a host global in `files`, found by the type checker: an identifier that
 * resolves to a declaration of TypeScript's libs (a property or parameter of ours that shares
 * the name does not), outside type positions.
 */
function hostGlobalUses(files: readonly string[]): string[] {
  const program = ts.createProgram(files, {
    target: ts.ScriptTarget.ES2023,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    lib: ['lib.es2023.d.ts', 'lib.dom.d.ts', 'lib.dom.iterable.d.ts'],
    types: [],
    allowImportingTsExtensions: true,
    noEmit: true,
  })
  const checker = program.getTypeChecker()
  const found: string[] = []
  const inType = (node: ts.Node): boolean => {
    for (let n: ts.Node | undefined = node.parent; n !== undefined; n = n.parent) {
      if (ts.isTypeNode(n) || ts.isInterfaceDeclaration(n) || ts.isTypeAliasDeclaration(n))
        return true
      if (ts.isStatement(n)) return false
    }
    return false
  }
  for (const file of program.getSourceFiles()) {
    if (!files.includes(file.fileName)) continue
    const visit = (node: ts.Node): void => {
      if (ts.isIdentifier(node) && HOST_GLOBALS.has(node.text) && !inType(node)) {
        const declared = checker.getSymbolAtLocation(node)?.declarations?.[0]?.getSourceFile()
        const fromLib =
          declared === undefined || /[\\/]typescript[\\/]lib[\\/]/.test(declared.fileName)
        const memberName = ts.isPropertyAccessExpression(node.parent) && node.parent.name === node
        if (fromLib && !memberName) {
          const { line } = file.getLineAndCharacterOfPosition(node.getStart())
          found.push(`${file.fileName.split('/').pop()}:${line + 1}: ${node.text}`)
        }
      }
      ts.forEachChild(node, visit)
    }
    visit(file)
  }
  return found
}

describe('environment', () => {
  it('is the only source file that reads a host global', () => {
    const dir = fileURLToPath(new URL('.', import.meta.url))
    const sources = readdirSync(dir)
      .filter((name) => name.endsWith('.ts') && !name.endsWith('.test.ts'))
      .map((name) => `${dir}${name}`)
    const uses = hostGlobalUses(sources)
    // The check can see a use: environment.ts has them all.
    expect(uses.some((u) => u.startsWith('environment.ts:'))).toBe(true)
    expect(uses.filter((u) => !u.startsWith('environment.ts:'))).toEqual([])
  }, 60_000)

  it('measures time on the timers’ clock: the scheduler’s own, else the host’s monotonic one', () => {
    // Silence of a socket is measured on it (connection.ts invariant 4): never the wall clock.
    let t = 5
    expect(timersClock({ ...realScheduler, now: () => t })()).toBe(5)
    t = 9
    expect(timersClock({ ...realScheduler, now: () => t })()).toBe(9)
    const { now: _now, ...withoutClock } = realScheduler
    const host = timersClock(withoutClock)
    const first = host()
    expect(Number.isFinite(first)).toBe(true)
    expect(host()).toBeGreaterThanOrEqual(first)
  })

  it('defaults to the host and keeps every piece it is given, null included', () => {
    const host = resolveEnvironment({})
    expect(host.scheduler).toBe(realScheduler)
    expect(typeof host.now()).toBe('number')
    expect(host.BroadcastChannel).toBe(globalThis.BroadcastChannel)
    expect(host.network).not.toBeNull()
    const scheduler: Scheduler = { ...realScheduler }
    const network: ClientNetwork = { listen: () => () => {} }
    const storage: PersistentStorage = { persist: async () => true }
    const given = resolveEnvironment({
      now: () => 7,
      random: (b) => b.fill(0),
      scheduler,
      locks: null,
      BroadcastChannel: null,
      network,
      storage,
    })
    expect(given.now()).toBe(7)
    expect(given.random()).toBe(0)
    expect(given.scheduler).toBe(scheduler)
    expect(given.network).toBe(network)
    expect(given.storage).toBe(storage)
    expect(given.locks).toBeNull()
    expect(given.BroadcastChannel).toBeNull()
    const off = resolveEnvironment({ network: null, storage: null })
    expect(off.network).toBeNull()
    expect(off.storage).toBeNull()
  })

  it('makes random floats in [0, 1) from the injected bytes only', () => {
    expect(randomFloat((b) => b.fill(0))).toBe(0)
    expect(randomFloat((b) => b.fill(255))).toBeLessThan(1)
    expect(randomFloat((b) => b.fill(255))).toBeGreaterThan(0.999)
    expect(randomFloat((b) => b.set([128, 0, 0, 0]))).toBe(0.5)
  })

  it('listens to online and offline on the host when it has them', () => {
    const events = new EventTarget()
    const g = globalThis as { addEventListener?: unknown; removeEventListener?: unknown }
    g.addEventListener = events.addEventListener.bind(events)
    g.removeEventListener = events.removeEventListener.bind(events)
    try {
      const seen: string[] = []
      const network = resolveEnvironment({}).network as ClientNetwork
      const stop = network.listen(
        () => seen.push('online'),
        () => seen.push('offline'),
      )
      events.dispatchEvent(new Event('offline'))
      events.dispatchEvent(new Event('online'))
      stop()
      events.dispatchEvent(new Event('offline'))
      expect(seen).toEqual(['offline', 'online'])
    } finally {
      delete g.addEventListener
      delete g.removeEventListener
    }
  })

  it('sleeps on the scheduler it is given', async () => {
    let due: (() => void) | undefined
    const scheduler: Scheduler = { ...realScheduler, setTimeout: (fn) => (due = fn) }
    let woke = false
    const sleeping = sleep(scheduler, 1_000).then(() => (woke = true))
    await Promise.resolve()
    expect(woke).toBe(false)
    due?.()
    await sleeping
    expect(woke).toBe(true)
  })
})
