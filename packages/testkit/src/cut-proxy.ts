/**
 * A TCP proxy on loopback whose connections can be cut (and new ones refused) and let through
 * again: what stands between a store hub and head office in tests and benchmarks, to cut the
 * hub's upstream link without touching either process.
 *
 * Invariants:
 * 1. Listens on 127.0.0.1 only, on a free port; forwards to 127.0.0.1:`port`.
 * 2. `cut()` destroys every open connection and refuses new ones until `restore()`.
 * 3. `close()` destroys every connection and stops listening.
 */
import { createConnection, createServer } from 'node:net'
import type { Server, Socket } from 'node:net'

export interface CutProxy {
  /** `ws://127.0.0.1:<port>/sync` through the proxy. */
  readonly url: string
  /** Cuts every connection and refuses new ones. */
  cut(): void
  restore(): void
  close(): Promise<void>
}

/**
 * @example
 * const proxy = await startCutProxy(headOffice.port) // hub: --upstream proxy.url
 * proxy.cut() // the store is cut off; proxy.restore() lets the link return
 */
export async function startCutProxy(port: number): Promise<CutProxy> {
  const sockets = new Set<Socket>()
  let open = true
  const server: Server = createServer((inbound) => {
    if (!open) {
      inbound.destroy()
      return
    }
    const outbound = createConnection(port, '127.0.0.1')
    sockets.add(inbound).add(outbound)
    inbound.pipe(outbound).pipe(inbound)
    const gone = () => {
      inbound.destroy()
      outbound.destroy()
      sockets.delete(inbound)
      sockets.delete(outbound)
    }
    inbound.on('error', gone).on('close', gone)
    outbound.on('error', gone).on('close', gone)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address() as { port: number }
  return {
    url: `ws://127.0.0.1:${address.port}/sync`,
    cut() {
      open = false
      for (const s of sockets) s.destroy()
    },
    restore() {
      open = true
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy()
        server.close(() => resolve())
      }),
  }
}
