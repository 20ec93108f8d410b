// Serves the browser test page: esbuild bundles web-test/page.ts in memory, and a tiny HTTP
// server on 127.0.0.1 (port 0) serves it. Loopback only; closed by the caller.
import { createServer, type Server } from 'node:http'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'

export interface PageServer {
  /** `http://127.0.0.1:<port>` */
  readonly origin: string
  close(): Promise<void>
}

/** Bundles and serves `entry` (a file of web-test/, default the client harness `page.ts`). */
export async function servePage(entry = 'page.ts'): Promise<PageServer> {
  const result = await build({
    entryPoints: [fileURLToPath(new URL(`./${entry}`, import.meta.url))],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    write: false,
    logLevel: 'silent',
  })
  const js = result.outputFiles[0]?.text ?? ''
  const html =
    '<!doctype html><meta charset="utf-8"><title>ledgerline client test</title><script type="module" src="/page.js"></script>'
  const server: Server = createServer((req, res) => {
    if (req.url === '/page.js') {
      res.writeHead(200, { 'content-type': 'text/javascript' })
      res.end(js)
    } else {
      res.writeHead(200, { 'content-type': 'text/html' })
      res.end(html)
    }
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
  const port = (server.address() as { port: number }).port
  return {
    origin: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
