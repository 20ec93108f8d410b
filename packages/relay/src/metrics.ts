/**
 * The relay's metrics, rendered as Prometheus text at `/metrics` through `prom-client`: one
 * registry per relay (two relays in one process never share counters), with prom-client's
 * default process metrics (CPU, memory, event loop lag, handles) beside Ledgerline's own.
 *
 * Invariants:
 * 1. Counters only grow; `ledgerline_connections` is a gauge of open, authenticated-or-not
 *    sockets.
 * 2. Label values come from closed sets (ack status, refusal and deferral codes), so series
 *    stay bounded.
 * 3. Nothing here is global: default metrics go to this relay's registry only.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client'
import type { AckResult } from '@ledgerline/protocol'

/** The statuses of ack results: the label values of `ledgerline_appends_total`. */
const ACK_STATUSES = [
  'appended',
  'duplicate',
  'refused',
  'id_conflict',
  'deferred',
  // A store hub's answer: durable in the store, not yet at head office.
  'stored',
] as const satisfies readonly AckResult['status'][]

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
  /** One push refused because the commit queue was full. */
  overloaded(): void
  /** Where `ledgerline_yjs_rooms` reads the open y-websocket rooms from, at each scrape. */
  countYjsRooms(count: () => number): void
  /**
   * Where `ledgerline_ledger_snapshots_total` reads the snapshot pass's counts by outcome from
   * (`ledger-snapshots.ts`), at each scrape.
   */
  countLedgerSnapshots?(counts: () => Readonly<Record<string, number>>): void
  /** The Prometheus text exposition, and its content type. */
  render(): Promise<string>
  readonly contentType: string
}

/**
 * @example
 * const metrics = createRelayMetrics()
 * metrics.appended(results, 3.2)
 * await metrics.render() // '# HELP ledgerline_appends_total …'
 */
export function createRelayMetrics(): RelayMetrics {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })
  const registers = [registry]
  const connections = new Gauge({
    name: 'ledgerline_connections',
    help: 'Open WebSocket connections.',
    registers,
  })
  const connectionsTotal = new Counter({
    name: 'ledgerline_connections_total',
    help: 'WebSocket connections accepted.',
    registers,
  })
  const appends = new Counter({
    name: 'ledgerline_appends_total',
    help: 'Entries answered in acks, by status.',
    labelNames: ['status'] as const,
    registers,
  })
  const refusals = new Counter({
    name: 'ledgerline_refusals_total',
    help: 'Refused entries, by code.',
    labelNames: ['code'] as const,
    registers,
  })
  const deferrals = new Counter({
    name: 'ledgerline_deferrals_total',
    help: 'Entries the log could not decide yet (deferred), by code.',
    labelNames: ['code'] as const,
    registers,
  })
  const corrections = new Counter({
    name: 'ledgerline_corrections_total',
    help: 'Corrections appended by the log.',
    registers,
  })
  const overloaded = new Counter({
    name: 'ledgerline_overloaded_total',
    help: 'Pushes refused because the commit queue was full (COMMIT_QUEUE_ENTRIES_MAX).',
    registers,
  })
  const bytesIn = new Counter({
    name: 'ledgerline_bytes_in_total',
    help: 'WebSocket payload bytes received.',
    registers,
  })
  const bytesOut = new Counter({
    name: 'ledgerline_bytes_out_total',
    help: 'WebSocket payload bytes sent.',
    registers,
  })
  const latency = new Histogram({
    name: 'ledgerline_append_latency_seconds',
    help: 'Time from a push arriving to its durable ack.',
    buckets: [...APPEND_LATENCY_BUCKETS_S],
    registers,
  })
  let yjsRooms = (): number => 0
  new Gauge({
    name: 'ledgerline_yjs_rooms',
    help: 'Open y-websocket rooms (documents held in memory).',
    registers,
    collect() {
      this.set(yjsRooms())
    },
  })
  let ledgerSnapshots = (): Readonly<Record<string, number>> => ({})
  new Counter({
    name: 'ledgerline_ledger_snapshots_total',
    help: 'Ledger entities the snapshot pass handled, by outcome (dropped: queue full).',
    labelNames: ['outcome'] as const,
    registers,
    collect() {
      this.reset()
      for (const [outcome, n] of Object.entries(ledgerSnapshots())) this.inc({ outcome }, n)
    },
  })
  // Every status is a series from the start, so a dashboard sees zeros rather than gaps.
  for (const status of ACK_STATUSES) appends.inc({ status }, 0)
  return {
    connectionOpened: () => {
      connections.inc()
      connectionsTotal.inc()
    },
    connectionClosed: () => connections.dec(),
    countLedgerSnapshots: (counts) => {
      ledgerSnapshots = counts
    },
    bytesIn: (n) => bytesIn.inc(n),
    bytesOut: (n) => bytesOut.inc(n),
    appended: (results, latencyMs) => {
      const counts = new Map<AckResult['status'], number>()
      let fixes = 0
      for (const r of results) {
        counts.set(r.status, (counts.get(r.status) ?? 0) + 1)
        if (r.status === 'appended') fixes += r.corrections.length
        else if (r.status === 'refused') refusals.inc({ code: r.code })
        else if (r.status === 'deferred') deferrals.inc({ code: r.code })
      }
      for (const [status, n] of counts) appends.inc({ status }, n)
      if (fixes > 0) corrections.inc(fixes)
      latency.observe(latencyMs / 1000)
    },
    overloaded: () => overloaded.inc(),
    countYjsRooms: (count) => {
      yjsRooms = count
    },
    render: () => registry.metrics(),
    contentType: registry.contentType,
  }
}
