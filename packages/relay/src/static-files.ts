/**
 * Static files for `--static DIR` (the demo): GET and HEAD only, content types by extension,
 * and `index.html` for single-page-app routes.
 *
 * Invariants:
 * 1. Nothing outside the root is ever read: the decoded path is resolved under the root's real
 *    path, and the file's real path (symlinks followed) must still be under it.
 * 2. Paths with NUL, bad percent-encoding, or over `STATIC_PATH_LENGTH_MAX` are refused (400).
 * 3. A path without a file extension that names no file is a client-side route: `index.html`.
 */
import { createReadStream } from 'node:fs'
import { realpath, stat } from 'node:fs/promises'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { extname, resolve, sep } from 'node:path'
import { STATIC_PATH_LENGTH_MAX } from './limits.ts'

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.webmanifest': 'application/manifest+json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.wasm': 'application/wasm',
}

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
    let file = await existingFile(base, wanted)
    if (file === undefined && extname(path) === '') {
      file = await existingFile(base, resolve(base, 'index.html'))
    }
    if (file === undefined) return answer(res, 404, 'not found')
    const type = CONTENT_TYPES[extname(file.path).toLowerCase()] ?? 'application/octet-stream'
    res.writeHead(200, {
      'content-type': type,
      'content-length': file.size,
      'x-content-type-options': 'nosniff',
      'cache-control': file.path.endsWith('.html') ? 'no-cache' : 'public, max-age=3600',
    })
    if (req.method === 'HEAD') {
      res.end()
      return true
    }
    await new Promise<void>((done) => {
      const stream = createReadStream(file.path)
      stream.on('error', () => {
        res.destroy()
        done()
      })
      stream.on('end', () => done())
      stream.pipe(res)
    })
    return true
  }
}

/** The real file at `path` (a directory's `index.html`), if it exists under `base`. */
async function existingFile(
  base: string,
  path: string,
): Promise<{ path: string; size: number } | undefined> {
  try {
    let real = await realpath(path)
    let info = await stat(real)
    if (info.isDirectory()) {
      real = await realpath(resolve(real, 'index.html'))
      info = await stat(real)
    }
    if (!info.isFile()) return undefined
    if (real !== base && !real.startsWith(base + sep)) return undefined
    return { path: real, size: info.size }
  } catch {
    return undefined
  }
}

function answer(res: ServerResponse, status: number, text: string): true {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' })
  res.end(text)
  return true
}
