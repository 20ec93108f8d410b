/**
 * Builds the register app into dist/ and its service worker: `service-worker.js` is emitted
 * with the list of every file of the build (the app shell to precache) and a version made from
 * their names, so a new build replaces the old cache and an old one never serves new files.
 */
import react from '@vitejs/plugin-react'
import { readFileSync } from 'node:fs'
import { createHash } from 'node:crypto'
import { defineConfig, type Plugin } from 'vite'

export default defineConfig({
  plugins: [react(), serviceWorker()],
  build: { outDir: 'dist', emptyOutDir: true, sourcemap: true },
  server: {
    proxy: {
      '/sync': { target: 'ws://localhost:8787', ws: true },
      '/dev': 'http://localhost:8787',
    },
  },
})

function serviceWorker(): Plugin {
  return {
    name: 'ledgerline-service-worker',
    apply: 'build',
    generateBundle(_options, bundle) {
      const files = Object.keys(bundle)
        .filter((f) => !f.endsWith('.map'))
        .map((f) => `/${f}`)
      const shell = ['/', '/index.html', '/manifest.webmanifest', '/icon.svg', ...files]
      const version = createHash('sha256').update(shell.join('\n')).digest('hex').slice(0, 12)
      const source = readFileSync(new URL('./src/service-worker.js', import.meta.url), 'utf8')
        .replace("'__SHELL__'", JSON.stringify([...new Set(shell)]))
        .replace('__VERSION__', version)
      this.emitFile({ type: 'asset', fileName: 'service-worker.js', source })
    },
  }
}
