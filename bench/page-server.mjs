// Serves one browser page for the benchmarks that run in Chromium (`client`, `query`): the
// page's script bundled by esbuild, and an HTML shell, on 127.0.0.1 (an ephemeral port).
import { createServer } from 'node:http'
import { join } from 'node:path'
import { build } from 'esbuild'
import { BENCH_DIR } from './lib.mjs'

/** Bundles `page/<file>` and serves it; `close()` stops the server. */
export async function servePage(file) {
  const result = await build({
    entryPoints: [join(BENCH_DIR, 'page', file)],
    bundle: true,
    minify: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    write: false,
    logLevel: 'silent',
  })
  const js = result.outputFiles[0].text
  const html =
    '<!doctype html><meta charset="utf-8"><title>bench</title><script type="module" src="/page.js"></script>'
  const server = createServer((req, res) => {
    const isJs = req.url === '/page.js'
    res.writeHead(200, { 'content-type': isJs ? 'text/javascript' : 'text/html' })
    res.end(isJs ? js : html)
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    origin: `http://127.0.0.1:${server.address().port}`,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
