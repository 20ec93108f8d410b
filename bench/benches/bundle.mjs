// Client bundle size: what a web app ships to get Ledgerline, minified and gzipped, beside the
// same measure for the stacks a user would pick instead. Each bundle is built by esbuild from a
// one-line entry that uses the public API, so tree-shaking keeps only what an app would load.
import { build } from 'esbuild'
import { gzipSync } from 'node:zlib'
import { report } from '../lib.mjs'

const BUNDLES = [
  {
    label: 'core + protocol + client',
    code: `import { createClient } from '@ledgerline/client'; globalThis.x = createClient`,
    target: 25 * 1024,
  },
  {
    label: '@ledgerline/yjs adapter (yjs itself external)',
    code: `import * as a from '@ledgerline/yjs'; globalThis.x = a`,
    external: ['yjs'],
  },
  {
    label: '@ledgerline/automerge adapter (automerge itself external)',
    code: `import * as a from '@ledgerline/automerge'; globalThis.x = a`,
    external: ['@automerge/automerge', '@automerge/automerge/*'],
  },
  {
    label: 'anchor: yjs + y-indexeddb + y-websocket',
    code: `import * as Y from 'yjs'; import { IndexeddbPersistence } from 'y-indexeddb'; import { WebsocketProvider } from 'y-websocket'; globalThis.x = [Y.Doc, IndexeddbPersistence, WebsocketProvider]`,
  },
  {
    label: 'anchor: automerge-repo + IndexedDB + WebSocket adapters (wasm excluded)',
    code: `import { Repo } from '@automerge/automerge-repo'; import { IndexedDBStorageAdapter } from '@automerge/automerge-repo-storage-indexeddb'; import { WebSocketClientAdapter } from '@automerge/automerge-repo-network-websocket'; globalThis.x = [Repo, IndexedDBStorageAdapter, WebSocketClientAdapter]`,
    loader: { '.wasm': 'empty' },
  },
]

/**
 * Where a bundle's minified bytes come from, by package (the measure behind a target not met):
 * the largest four with their share, e.g. `client 62 %, @msgpack/msgpack 16 %, … of the minified
 * bytes`.
 */
function shareByPackage(metafile) {
  const inputs = Object.values(metafile.outputs)[0].inputs
  const byPackage = new Map()
  let total = 0
  for (const [path, { bytesInOutput }] of Object.entries(inputs)) {
    const name = path.includes('node_modules/')
      ? path
          .split('node_modules/')[1]
          .split('/')
          .slice(0, path.includes('node_modules/@') ? 2 : 1)
          .join('/')
      : path.replace(/^(?:\.\.\/)*packages\/([^/]+)\/.*$/, '$1')
    byPackage.set(name, (byPackage.get(name) ?? 0) + bytesInOutput)
    total += bytesInOutput
  }
  return [...byPackage]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 4)
    .map(([name, bytes]) => `${name} ${Math.round((100 * bytes) / total)} %`)
    .join(', ')
    .concat(' of the minified bytes')
}

export async function run() {
  const rows = []
  for (const b of BUNDLES) {
    try {
      const out = await build({
        stdin: { contents: b.code, resolveDir: process.cwd(), loader: 'js' },
        bundle: true,
        minify: true,
        format: 'esm',
        platform: 'browser',
        write: false,
        external: b.external ?? [],
        loader: b.loader ?? {},
        logLevel: 'silent',
        metafile: b.target !== undefined,
      })
      const bytes = out.outputFiles[0].contents
      const gz = gzipSync(bytes, { level: 9 }).length
      const value = {
        label: b.label,
        unit: 'KB min+gz',
        median: gz / 1024,
        min: gz / 1024,
        max: gz / 1024,
      }
      rows.push({
        label: `${b.label} (${(bytes.length / 1024).toFixed(1)} KB min)`,
        ours: b.label.startsWith('anchor') ? undefined : value,
        anchor: b.label.startsWith('anchor') ? value : undefined,
        target: b.target === undefined ? undefined : `≤ ${b.target / 1024} KB`,
        met: b.target === undefined ? undefined : gz <= b.target,
        limit: out.metafile === undefined ? undefined : shareByPackage(out.metafile),
      })
    } catch (error) {
      rows.push({ label: `${b.label}: build failed (${String(error.message).split('\n')[0]})` })
    }
  }
  report('bundle', rows)
}
