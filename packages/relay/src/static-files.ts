/**
 * Static files for `--static DIR` (the demo), served by `sirv`: ranges, ETags (304 on a match),
 * precompressed `.br` / `.gz` siblings, content types; plus the relay's own rules: GET and HEAD
 * only, nothing outside the root, `index.html` for single-page-app routes, and cache headers
 * that let the demo's service worker update.
 *
 * Invariants:
 * 1. Nothing outside the root is ever read: the decoded path is resolved under the root's real
 *    path, and an existing file's real path (symlinks followed) must still be under it.
 * 2. Paths with NUL, bad percent-encoding, or over `STATIC_PATH_LENGTH_MAX` are refused (400).
 * 3. A path without a file extension that names no file is a client-side route: `index.html`.
 *    A missing file with an extension is a 404.
 * 4. HTML, the service worker and the web manifest are `no-cache` (revalidated each time, so a
 *    new build reaches every register); other files are `public, max-age=3600`.
 * 5. The file list is read when the handler is made (sirv's production mode): files added to
 *    the root later are not served until the relay restarts.
 */
import { realpath } from 'node:fs/promises'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { extname, resolve, sep } from 'node:path'
import sirv from 'sirv'
import { STATIC_PATH_LENGTH_MAX } from './limits.ts'

export type StaticHandler = (req: IncomingMessage, res: ServerResponse) => Promise<boolean>

/**
 * Serves files under `root`; the handler resolves `false` when it did not answer (not GET/HEAD).
 *
 * @example
 * const serve = await createStaticHandler('demo/dist')
 * http.createServer(async (req, res) => { if (!(await serve(req, res))) res.end() })
 */
export async function createStaticHandler(root: string): Promise<StaticHandler> {
  const base = await realpath(resolve(root))
  const serve = sirv(base, {
    dev: false,
    etag: true,
    gzip: true,
    brotli: true,
    single: true,
    dotfiles: false,
    setHeaders: (res, pathname) => {
      const ext = extname(pathname).toLowerCase()
      const name = pathname.slice(pathname.lastIndexOf('/') + 1)
      const fresh = ext === '' || ext === '.html' || NO_CACHE_FILES.has(name)
      res.setHeader('cache-control', fresh ? 'no-cache' : 'public, max-age=3600')
      res.setHeader('x-content-type-options', 'nosniff')
      const text = TEXT_TYPES[ext]
      if (text !== undefined) res.setHeader('content-type', text)
    },
  })
  return async (req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return false
    const rawPath = (req.url ?? '/').split('?')[0] as string
    let path: string
    try {
      path = decodeURIComponent(rawPath)
    } catch {
      return answer(res, 400, 'bad path')
    }
    if (path.length > STATIC_PATH_LENGTH_MAX || path.includes('\0') || !path.startsWith('/')) {
      return answer(res, 400, 'bad path')
    }
    const wanted = resolve(base, `.${path}`)
    if (wanted !== base && !wanted.startsWith(base + sep)) return answer(res, 404, 'not found')
    // Invariant 1: sirv lists files through symlinks; one that leads out is not ours to serve.
    for (const candidate of [wanted, `${wanted}.br`, `${wanted}.gz`]) {
      if (await leadsOutside(base, candidate)) return answer(res, 404, 'not found')
    }
    await new Promise<void>((done) => {
      res.once('close', done)
      res.once('finish', done)
      serve(req, res, () => {
        answer(res, 404, 'not found')
      })
    })
    return true
  }
}

/** Names that must be revalidated on every load (invariant 4). */
const NO_CACHE_FILES = new Set(['service-worker.js', 'manifest.webmanifest'])

/** Text types with their charset, which sirv's content types leave out. */
const TEXT_TYPES: Readonly<Record<string, string>> = {
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.webmanifest': 'application/manifest+json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
}

/** True when `path` exists and its real path is outside `base`. */
async function leadsOutside(base: string, path: string): Promise<boolean> {
  let real: string
  try {
    real = await realpath(path)
  } catch {
    return false
  }
  return real !== base && !real.startsWith(base + sep)
}

function answer(res: ServerResponse, status: number, text: string): true {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' })
  res.end(text)
  return true
}
