// Bundles the point-of-sale schema (src/schema.ts, with the catalog, @ledgerline/core and the
// CRDT entity types) into one plain ES module the relay loads with Node:
// `--schema demo/dist-schema/schema.js`.
import { build } from 'esbuild'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
await build({
  entryPoints: [`${root}src/schema.ts`],
  outfile: `${root}dist-schema/schema.js`,
  bundle: true,
  format: 'esm',
  platform: 'neutral',
  // The relay resolves these from node_modules itself: one copy of Yjs per process (Yjs warns
  // about two and its constructor checks break), and Automerge stays out of the bundle.
  external: ['yjs', '@automerge/automerge', '@automerge/automerge/*'],
  target: 'node20',
  logLevel: 'warning',
})
console.log('schema: demo/dist-schema/schema.js')
