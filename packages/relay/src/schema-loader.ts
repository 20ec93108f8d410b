/**
 * Loads the schema module the relay decides with (`--schema FILE`): an ES module whose default
 * export is `defineSchema(…)`. A JavaScript module (`.js`, `.mjs`) is imported as it is; a
 * TypeScript one (`.ts`, `.mts`, `.tsx`) is bundled first with esbuild, so the app and the
 * relay load the very same source file and nothing has to be built by hand.
 *
 *   schema.ts ──esbuild (its own files inlined, packages left as imports)──► temp .mjs ──import
 *
 * Invariants:
 * 1. Only the schema's own files are bundled. Every package it imports (`@ledgerline/core`,
 *    `valibot`, `yjs`…) stays an import, resolved from the schema file's directory to an
 *    absolute URL, so the process holds one copy of each (Yjs breaks with two) and the
 *    schema sees the packages the app installed.
 * 2. Any failure is a `RelayError('schema_module')` whose message names the schema file and,
 *    when known, the line and column in it: esbuild's location for a syntax error, the
 *    source-mapped first frame inside the schema's files for an error thrown while it loads.
 * 3. Nothing is left behind: the bundle's temporary directory is removed once it is loaded
 *    or has failed to.
 * 4. esbuild is loaded only for a TypeScript schema; a relay with a JavaScript schema or none
 *    never loads it.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { SourceMap } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, extname, join, relative, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { isSchema } from '@ledgerline/core'
import type { Schema } from '@ledgerline/core'
import type * as Esbuild from 'esbuild'
import type { Message, Plugin } from 'esbuild'
import { RelayError } from './relay-error.ts'

/** Extensions bundled with esbuild before they are imported. */
export const TYPESCRIPT_SCHEMA_EXTENSIONS: readonly string[] = ['.ts', '.mts', '.cts', '.tsx']

/**
 * Imports a schema module by path (relative to `cwd`) and returns its default export, which
 * must be a schema made by `defineSchema`. TypeScript is bundled first (invariants 1–4).
 *
 * @example
 * const schema = await loadSchemaModule('./schema.ts', process.cwd())
 */
export async function loadSchemaModule(path: string, cwdGiven: string): Promise<Schema> {
  const cwd = resolve(cwdGiven)
  const file = resolve(cwd, path)
  const module = TYPESCRIPT_SCHEMA_EXTENSIONS.includes(extname(file).toLowerCase())
    ? await importTypeScript(path, file, cwd)
    : await importModule(path, pathToFileURL(file).href)
  if (!isSchema(module.default)) {
    throw new RelayError(
      'schema_module',
      `schema module ${path} must default-export a schema: export default defineSchema(...)`,
    )
  }
  return module.default
}

type SchemaModule = { default?: unknown }

async function importModule(path: string, url: string): Promise<SchemaModule> {
  try {
    return (await import(url)) as SchemaModule
  } catch (error) {
    throw new RelayError('schema_module', `cannot load schema module ${path}: ${describe(error)}`, {
      cause: error,
    })
  }
}

async function importTypeScript(path: string, file: string, cwd: string): Promise<SchemaModule> {
  let esbuild: typeof Esbuild
  try {
    esbuild = await import('esbuild')
  } catch (error) {
    throw new RelayError(
      'schema_module',
      `schema module ${path} is TypeScript, and loading it needs esbuild, which is missing ` +
        `(npm install esbuild), or give a JavaScript schema module: ${describe(error)}`,
      { cause: error },
    )
  }
  const dir = mkdtempSync(join(tmpdir(), 'ledgerline-schema-'))
  try {
    const outfile = join(dir, 'schema.mjs')
    let output: { js: string; map: string }
    try {
      const result = await esbuild.build({
        entryPoints: [file],
        absWorkingDir: cwd,
        outfile,
        bundle: true,
        write: false,
        format: 'esm',
        platform: 'node',
        target: 'node20',
        sourcemap: 'external',
        sourcesContent: false,
        logLevel: 'silent',
        plugins: [packagesAsUrls()],
      })
      const js = result.outputFiles.find((f) => f.path.endsWith('.mjs'))
      const map = result.outputFiles.find((f) => f.path.endsWith('.map'))
      output = { js: js?.text ?? '', map: map?.text ?? '{}' }
    } catch (error) {
      const first = (error as { errors?: Message[] }).errors?.[0]
      const where = first?.location
      const at =
        where === null || where === undefined
          ? path
          : `${relative(cwd, resolve(cwd, where.file)) || path}:${where.line}:${where.column + 1}`
      throw new RelayError(
        'schema_module',
        `cannot load schema module ${path}: ${at}: ${first?.text ?? describe(error)}`,
        { cause: error },
      )
    }
    writeFileSync(outfile, output.js)
    const url = pathToFileURL(outfile).href
    try {
      return (await import(url)) as SchemaModule
    } catch (error) {
      const at = sourceLocation(error, output.map, outfile, cwd)
      throw new RelayError(
        'schema_module',
        `cannot load schema module ${path}: ${at === undefined ? '' : `${at}: `}${describe(error)}`,
        { cause: error },
      )
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/**
 * Invariant 1: every import that is not a file of the schema's own resolves, with esbuild's
 * Node rules (the `import` condition), to an absolute URL and stays an import.
 */
function packagesAsUrls(): Plugin {
  const nested = Symbol('ledgerline-schema-nested')
  return {
    name: 'ledgerline-packages-as-urls',
    setup(build) {
      build.onResolve({ filter: /^[^./]/ }, async (args) => {
        if (args.pluginData === nested) return undefined
        if (args.path.startsWith('node:')) return { path: args.path, external: true }
        const found = await build.resolve(args.path, {
          kind: args.kind,
          importer: args.importer,
          resolveDir: args.resolveDir,
          pluginData: nested,
        })
        if (found.errors.length > 0) return { errors: found.errors }
        // A built-in module named without `node:` resolves to itself, not to a file.
        if (found.external || !found.path.startsWith('/'))
          return { path: args.path, external: true }
        return { path: pathToFileURL(found.path).href, external: true }
      })
    },
  }
}

/** Invariant 2: where in the schema's own files an error thrown while loading it came from. */
function sourceLocation(
  error: unknown,
  mapText: string,
  outfile: string,
  cwd: string,
): string | undefined {
  const stack = error instanceof Error ? (error.stack ?? '') : ''
  // Node names the module by its URL in a stack frame; a module runner (vitest) by its path.
  const escaped = outfile.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
  const frame = new RegExp(`(?:file://)?${escaped}:(\\d+):(\\d+)`).exec(stack)
  if (frame === null) return undefined
  try {
    const map = new SourceMap(JSON.parse(mapText) as ConstructorParameters<typeof SourceMap>[0])
    const entry = map.findEntry(Number(frame[1]) - 1, Number(frame[2]) - 1) as {
      originalSource?: string
      originalLine?: number
      originalColumn?: number
    }
    if (entry.originalSource === undefined || entry.originalLine === undefined) return undefined
    const source = entry.originalSource.startsWith('file:')
      ? fileURLToPath(entry.originalSource)
      : resolve(dirname(outfile), entry.originalSource)
    return `${relative(cwd, source)}:${entry.originalLine + 1}:${(entry.originalColumn ?? 0) + 1}`
  } catch {
    return undefined
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}
