/**
 * The relay's two HTTP health answers. `/healthz` says what runs (version, store, log identity,
 * partitions, connections) and whether the log answers; `/readyz` is the readiness check of a
 * load balancer or an orchestrator: 200 only while the log can serve (`store-health.ts`).
 *
 * Invariants:
 * 1. Both answer JSON with `cache-control: no-store`, 200 or 503, and never throw.
 * 2. `/readyz` is 503 while the log is unreachable (the probe read fails or times out) or while
 *    appends fail (a full disk), with the reason; `/healthz` is 503 only when the log does not
 *    answer at all, so a monitor tells "down" from "cannot write".
 */
import type { ServerResponse } from 'node:http'
import type { HttpHandler } from './http-routes.ts'
import { RELAY_VERSION } from './relay-log.ts'
import type { StoreHealth } from './store-health.ts'

export interface HealthSources {
  readonly health: StoreHealth
  /** What the store is: `sqlite`, `postgres`, or the name given for a store passed in. */
  readonly storeKind: string
  readonly connections: () => number
}

/**
 * The `/healthz` and `/readyz` handlers.
 *
 * @example
 * const { healthz, readyz } = createHealthHandlers({ health, storeKind: 'sqlite', connections })
 */
export function createHealthHandlers(sources: HealthSources): {
  healthz: HttpHandler
  readyz: HttpHandler
} {
  const base = () => ({ version: RELAY_VERSION, backend: sources.storeKind })
  return {
    async healthz(_req, res) {
      const r = await sources.health.readiness()
      if (r._tag === 'unreachable') {
        json(res, 503, { ok: false, ...base(), store: 'failed', error: r.message })
        return
      }
      json(res, 200, {
        ok: true,
        ...base(),
        store: r._tag === 'ready' ? 'ok' : 'not_writing',
        log: r.identity,
        partitions: r.partitions,
        connections: sources.connections(),
      })
    },
    async readyz(_req, res) {
      const r = await sources.health.readiness()
      if (r._tag === 'ready') {
        json(res, 200, { ready: true, ...base(), log: r.identity })
        return
      }
      json(res, 503, { ready: false, ...base(), reason: r._tag, error: r.message })
    },
  }
}

/** A JSON answer that no cache keeps (invariant 1). */
export function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body)
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-store',
  })
  res.end(text)
}
