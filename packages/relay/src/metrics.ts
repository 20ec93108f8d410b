/**
 * The relay's counters, rendered as Prometheus text at `/metrics`. Kept by hand (a few counters
 * and one histogram) rather than with a metrics library: nothing else needs one.
 *
 * Invariants:
 * 1. Counters only grow; `connections` is a gauge of open, authenticated-or-not sockets.
 * 2. Label values come from closed sets (ack status, refusal code), so series stay bounded.
 */
import type { AckResult } from '@ledgerline/protocol'

/** Upper bounds of the append latency histogram, in seconds. */
export const APPEND_LATENCY_BUCKETS_S = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10,
] as const

export interface RelayMetrics {
  connectionOpened(): void
  connectionClosed(): void
  bytesIn(n: number): void
  bytesOut(n: number): void
  /** One push answered: its results and how long the log took, in ms. */
  appended(results: readonly AckResult[], latencyMs: number): void
  render(): string
}

/**
 * @example
 * const metrics = createRelayMetrics()
 * metrics.appended(results, 3.2)
 * metrics.render() // '# TYPE ledgerline_appends_total counter\n…'
 */
export function createRelayMetrics(): RelayMetrics {
  let connections = 0
  let connectionsTotal = 0
  let bytesIn = 0
  let bytesOut = 0
  let corrections = 0
  const appends = new Map<string, number>()
  const refusals = new Map<string, number>()
  const buckets = APPEND_LATENCY_BUCKETS_S.map(() => 0)
  let latencyCount = 0
  let latencySum = 0
  const bump = (map: Map<string, number>, key: string) => map.set(key, (map.get(key) ?? 0) + 1)
  return {
    connectionOpened: () => {
      connections++
      connectionsTotal++
    },
    connectionClosed: () => {
      connections--
    },
    bytesIn: (n) => {
      bytesIn += n
    },
    bytesOut: (n) => {
      bytesOut += n
    },
    appended: (results, latencyMs) => {
      for (const r of results) {
        bump(appends, r.status)
        if (r.status === 'refused') bump(refusals, r.code)
        else if (r.status === 'appended') corrections += r.corrections.length
      }
      const s = latencyMs / 1000
      latencyCount++
      latencySum += s
      APPEND_LATENCY_BUCKETS_S.forEach((le, i) => {
        if (s <= le) buckets[i] = (buckets[i] ?? 0) + 1
      })
    },
    render: () => {
      const lines: string[] = []
      const metric = (name: string, type: string, help: string, samples: string[]) => {
        lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, ...samples)
      }
      metric('ledgerline_connections', 'gauge', 'Open WebSocket connections.', [
        `ledgerline_connections ${connections}`,
      ])
      metric('ledgerline_connections_total', 'counter', 'WebSocket connections accepted.', [
        `ledgerline_connections_total ${connectionsTotal}`,
      ])
      metric(
        'ledgerline_appends_total',
        'counter',
        'Entries answered in acks, by status.',
        ['appended', 'duplicate', 'refused'].map(
          (status) => `ledgerline_appends_total{status="${status}"} ${appends.get(status) ?? 0}`,
        ),
      )
      metric(
        'ledgerline_refusals_total',
        'counter',
        'Refused entries, by code.',
        [...refusals].map(([code, n]) => `ledgerline_refusals_total{code="${code}"} ${n}`),
      )
      metric('ledgerline_corrections_total', 'counter', 'Corrections appended by the log.', [
        `ledgerline_corrections_total ${corrections}`,
      ])
      metric('ledgerline_bytes_in_total', 'counter', 'WebSocket payload bytes received.', [
        `ledgerline_bytes_in_total ${bytesIn}`,
      ])
      metric('ledgerline_bytes_out_total', 'counter', 'WebSocket payload bytes sent.', [
        `ledgerline_bytes_out_total ${bytesOut}`,
      ])
      metric(
        'ledgerline_append_latency_seconds',
        'histogram',
        'Time from a push arriving to its durable ack.',
        [
          ...APPEND_LATENCY_BUCKETS_S.map(
            (le, i) => `ledgerline_append_latency_seconds_bucket{le="${le}"} ${buckets[i] ?? 0}`,
          ),
          `ledgerline_append_latency_seconds_bucket{le="+Inf"} ${latencyCount}`,
          `ledgerline_append_latency_seconds_sum ${latencySum}`,
          `ledgerline_append_latency_seconds_count ${latencyCount}`,
        ],
      )
      return `${lines.join('\n')}\n`
    },
  }
}
