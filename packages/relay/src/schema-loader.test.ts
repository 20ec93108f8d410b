// Goal: a TypeScript schema module loads in the relay as it is (bundled at start), keeps one copy
// of every package it imports, and a mistake in it is a `schema_module` error naming the file and
// line (exit code 2 from the CLI); the relay then decides with its typed kinds, refusing a wrong
// data shape and an undeclared kind with `invalid`. The `ledgerline-relay` bin runs the built CLI
// and says so plainly when the build is missing.
// Method: schema files written to a temp directory that links the repository's node_modules;
// loadSchemaModule directly, a relay started in process with the loaded schema and a wire client
// pushing entries, and the bin spawned as a child process.
import { spawnSync } from 'node:child_process'
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import * as core from '@ledgerline/core'
import type { AckMessage } from '@ledgerline/protocol'
import * as Y from 'yjs'
import { signToken } from './auth.ts'
import { HELP } from './cli.ts'
import { startCliProcess } from './cli-process.test-helper.ts'
import { createRelay } from './relay.ts'
import { RelayError } from './relay-error.ts'
import { loadSchemaModule } from './schema-loader.ts'
import { openClient } from './wire-client.test-helper.ts'

const RELAY = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const ROOT = resolve(RELAY, '../..')
const BIN = join(RELAY, 'bin/ledgerline-relay.js')
const SECRET = 'schema-loader-test-secret-0123456789'

const SCHEMA = `import * as v from 'valibot'
import * as Y from 'yjs'
import { defineEntity, defineSchema, LedgerError } from '@ledgerline/core'
import { GRINDERS } from './catalog.ts'

interface Stock {
  readonly onHand: number
}
export const stock = defineEntity({
  type: 'stock',
  initial: { onHand: GRINDERS } as Stock,
  kinds: {
    'stock.moved': v.object({ qty: v.pipe(v.number(), v.integer()) }),
    'stock.oversold': v.object({ short: v.number() }),
  },
  reduce: (s, e) => (e.kind === 'stock.moved' ? { onHand: s.onHand + e.data.qty } : s),
  invariants: { nonNegative: (s) => s.onHand >= 0 || 'stock below zero' },
  correct: (s) => [{ kind: 'stock.oversold', data: { short: -s.onHand } }],
})
// Carried out of the module so the test can compare package instances with its own.
const probe = defineEntity({ type: 'probe', initial: { Doc: Y.Doc, LedgerError }, reduce: (s) => s })
export default defineSchema(stock, probe)
`

const BAD_SYNTAX = `import { defineSchema } from '@ledgerline/core'

const broken: number = (
export default defineSchema()
`

const BAD_AT_LOAD = `import { defineEntity, defineSchema } from '@ledgerline/core'

const fine = 1
export const stock = defineEntity({ type: 'Stock', initial: fine, reduce: (s: number) => s })
export default defineSchema(stock)
`

const MISSING_PACKAGE = `import { defineSchema } from '@ledgerline/core'
import { nothing } from 'ledgerline-no-such-package'

export default defineSchema(nothing)
`

let dir = ''
let tempsBefore = 0
beforeAll(() => {
  tempsBefore = schemaTemps()
  dir = mkdtempSync(join(tmpdir(), 'll-schema-loader-'))
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'))
  writeFileSync(join(dir, 'schema.ts'), SCHEMA)
  writeFileSync(join(dir, 'catalog.ts'), 'export const GRINDERS: number = 1\n')
  writeFileSync(join(dir, 'bad-syntax.ts'), BAD_SYNTAX)
  writeFileSync(join(dir, 'bad-at-load.ts'), BAD_AT_LOAD)
  writeFileSync(join(dir, 'missing-package.ts'), MISSING_PACKAGE)
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe('loadSchemaModule with TypeScript', () => {
  it('bundles the schema and its own files, keeping packages as one copy each', async () => {
    const schema = await loadSchemaModule('./schema.ts', dir)
    expect([...schema.types.keys()]).toEqual(['stock', 'probe'])
    expect(schema.typeOf('stock/a').initial).toEqual({ onHand: 1 })
    const probe = schema.typeOf('probe/a').initial as { Doc: unknown; LedgerError: unknown }
    // Invariant 1: the schema's yjs and core are the relay's, not bundled copies.
    expect(probe.Doc).toBe(Y.Doc)
    expect(probe.LedgerError).toBe(core.LedgerError)
  })

  it('names the file, line and column of a syntax error', async () => {
    const error = await loadSchemaModule('./bad-syntax.ts', dir).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(RelayError)
    expect((error as RelayError).kind).toBe('schema_module')
    expect((error as RelayError).message).toMatch(/bad-syntax\.ts:4:1: Unexpected "export"/)
  })

  it('names the line of the schema that threw while loading', async () => {
    const error = await loadSchemaModule('./bad-at-load.ts', dir).catch((e: unknown) => e)
    expect((error as RelayError).kind).toBe('schema_module')
    expect((error as RelayError).message).toMatch(
      /bad-at-load\.ts:4:\d+: entity type 'Stock' must match/,
    )
  })

  it('names the line of an import that does not resolve', async () => {
    const error = await loadSchemaModule('./missing-package.ts', dir).catch((e: unknown) => e)
    expect((error as RelayError).kind).toBe('schema_module')
    expect((error as RelayError).message).toMatch(
      /missing-package\.ts:2:\d+: Could not resolve "ledgerline-no-such-package"/,
    )
  })

  it('leaves no temporary bundle behind', () => {
    // Runs after the loads above, the failed ones included (invariant 3).
    expect(schemaTemps()).toBe(tempsBefore)
  })

  it('decides with the typed kinds: bad data and undeclared kinds are refused as invalid', async () => {
    const schema = await loadSchemaModule('./schema.ts', dir)
    const relay = await createRelay({
      port: 0,
      dataDir: join(dir, 'data'),
      schema,
      auth: { secret: SECRET },
      logLevel: 'silent',
    })
    const client = await openClient(relay.url)
    try {
      const token = await signToken({
        secret: SECRET,
        tenant: 'acme',
        sub: 'till-1',
        read: ['*'],
        write: ['*'],
      })
      expect((await client.hello(token)).type).toBe('welcome')
      const entries = [
        client.entry('stock/grinder', 'stock.moved', { qty: -2 }),
        client.entry('stock/grinder', 'stock.moved', { qty: '5' }),
        client.entry('stock/grinder', 'stock.movd', { qty: 1 }),
      ]
      client.send({ type: 'push', batch: 1, entries })
      const ack = await client.next<AckMessage>((m) => m.type === 'ack' && m.batch === 1)
      const [sale, shape, kind] = ack.results
      expect(sale).toMatchObject({ status: 'appended', version: 1 })
      expect(sale?.status === 'appended' && sale.corrections.map((c) => c.kind)).toEqual([
        'stock.oversold',
      ])
      expect(shape).toMatchObject({ status: 'refused', code: 'invalid' })
      expect(shape?.status === 'refused' && shape.reason).toMatch(/^stock\.moved data\.qty: /)
      expect(kind).toMatchObject({ status: 'refused', code: 'invalid' })
      expect(kind?.status === 'refused' && kind.reason).toMatch(
        /kind 'stock\.movd' is not declared by entity type 'stock'/,
      )
    } finally {
      client.close()
      await relay.close()
    }
  })
})

describe('the ledgerline-relay bin', () => {
  it('starts the built CLI with a TypeScript schema, and exits 2 naming the line of a bad one', async () => {
    const bad = spawnSync(
      process.execPath,
      [BIN, '--port', '0', '--data', join(dir, 'bin-bad'), '--dev', '--schema', './bad-at-load.ts'],
      { cwd: dir, encoding: 'utf8', timeout: 20_000 },
    )
    expect(bad.status).toBe(2)
    expect(bad.stderr).toMatch(/bad-at-load\.ts:4:\d+: entity type 'Stock' must match/)
    expect(bad.stdout).toBe('')

    const good = await startCliProcess(
      BIN,
      ['--port', '0', '--data', join(dir, 'bin-good'), '--dev', '--schema', './schema.ts'],
      { cwd: dir },
    )
    expect(await good.stop()).toBe(0)
  })

  it('is linked in this repository: npx ledgerline-relay runs the built CLI', () => {
    // npm links the committed bin at install time, so this holds after `npm ci && npm run build`.
    const help = spawnSync('npx', ['ledgerline-relay', '--help'], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 20_000,
    })
    expect(help.status).toBe(0)
    expect(help.stdout).toBe(HELP)
  })

  it('says the relay is not built when dist/cli.js is missing', () => {
    const fake = join(dir, 'unbuilt')
    mkdirSync(join(fake, 'bin'), { recursive: true })
    copyFileSync(BIN, join(fake, 'bin/ledgerline-relay.js'))
    writeFileSync(join(fake, 'package.json'), '{ "type": "module" }\n')
    const run = spawnSync(process.execPath, [join(fake, 'bin/ledgerline-relay.js'), '--help'], {
      encoding: 'utf8',
      timeout: 20_000,
    })
    expect(run.status).toBe(2)
    expect(run.stderr).toContain('the relay is not built (dist/cli.js is missing)')
    expect(run.stderr).toContain('npm run build')
  })
})

function schemaTemps(): number {
  return readdirSync(tmpdir()).filter((name) => name.startsWith('ledgerline-schema-')).length
}
