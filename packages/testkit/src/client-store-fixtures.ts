/**
 * The entries, acks and helpers `runClientStoreContract` builds its cases from: valid entries
 * of three client ids, stored entries, the log's corrections, ack results and items.
 */
import type { Entry, StoredEntry } from '@ledgerline/core'
import type { AckResult } from '@ledgerline/protocol'
import type { AckItem, ClientStore } from '@ledgerline/client'

/** The client id the suite's database is created with; another client; a reissued one. */
export const CLIENT = 'a'.repeat(32)
export const OTHER = 'b'.repeat(32)
export const RENAMED = 'c'.repeat(32)
export const NOW = 1_700_000_000_000
/** Append limits no case reaches unless it means to. */
export const ROOMY = { entriesMax: 1_000, bytesMax: 1e9 }

export function size(): number {
  return 100
}

export function append(store: ClientStore, count: number, entity = 'stock/a', at = NOW) {
  return store.append(
    (clientId, first) =>
      Array.from({ length: count }, (_, i) => entry(clientId, first + i, entity)),
    ROOMY,
    at,
    size,
  )
}

export function entry(clientId: string, clientSeq: number, entity = 'stock/a'): Entry {
  return {
    id: `${clientId}-${clientSeq}`,
    tenant: 't1',
    entity,
    kind: 'stock.moved',
    data: { qty: 1, seq: clientSeq },
    intent: 'fact',
    clientId,
    clientSeq,
    hlc: `${String(NOW).padStart(15, '0')}:${String(clientSeq).padStart(5, '0')}:${clientId}`,
    occurredAt: NOW,
  }
}

/** Another client's entry. */
export function other(clientSeq: number, entity = 'stock/a'): Entry {
  return entry(OTHER, clientSeq, entity)
}

export function stored(e: Entry, version: number, partition: number, offset: number): StoredEntry {
  return { ...e, version, partition, offset, committedAt: NOW + offset }
}

/** The log's correction `index` of `of`, stored at (partition, offset). */
export function correction(
  of: Entry,
  index: number,
  partition: number,
  offset: number,
): StoredEntry {
  return {
    id: `${of.id}~nonNegative~${index}`,
    tenant: of.tenant,
    entity: of.entity,
    kind: 'stock.oversold',
    data: { short: 1 },
    intent: 'fact',
    corrects: of.id,
    clientId: 'server',
    clientSeq: 0,
    hlc: of.hlc,
    occurredAt: NOW,
    version: 100 + offset,
    partition,
    offset,
    committedAt: NOW,
  }
}

export type AppendedResult = Extract<AckResult, { readonly status: 'appended' | 'duplicate' }>

export function appended(version: number, partition: number, offset: number): AppendedResult {
  return {
    id: '',
    status: 'appended',
    version,
    partition,
    offset,
    committedAt: NOW + 1,
    corrections: [],
  }
}

export function ack(e: Entry, result: AckResult): AckItem {
  return {
    record: {
      clientId: e.clientId,
      clientSeq: e.clientSeq,
      id: e.id,
      entity: e.entity,
      entry: e,
      bytes: 100,
      at: NOW,
    },
    result: { ...result, id: e.id },
  }
}

export function kindOf(error: unknown): unknown {
  return (error as { kind?: unknown } | undefined)?.kind
}
