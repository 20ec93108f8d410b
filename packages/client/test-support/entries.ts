// Entries, stored entries, corrections and ack results for unit tests of the client store and
// the sync modules: valid by `validateEntry`, with readable ids.
import type { Entry, StoredEntry } from '@ledgerline/core'
import type { AckResult } from '@ledgerline/protocol'
import type { AckItem, ClientMeta, OutboxRecord } from '../src/client-store.ts'

export const CLIENT = 'a'.repeat(32)
export const OTHER = 'b'.repeat(32)
export const NOW = 1_700_000_000_000

export function entry(clientId: string, clientSeq: number, entity = 'stock/a'): Entry {
  return {
    id: `${clientId}-${clientSeq}`,
    tenant: 't1',
    entity,
    kind: 'stock.moved',
    data: { qty: 1 },
    intent: 'fact',
    clientId,
    clientSeq,
    hlc: `${String(NOW).padStart(15, '0')}:${String(clientSeq).padStart(5, '0')}:${clientId}`,
    occurredAt: NOW,
  }
}

export function stored(e: Entry, version: number, partition: number, offset: number): StoredEntry {
  return { ...e, version, partition, offset, committedAt: NOW }
}

export function correctionOf(of: Entry, partition: number, offset: number): StoredEntry {
  return {
    ...of,
    id: `${of.id}~nonNegative~0`,
    kind: 'stock.oversold',
    corrects: of.id,
    clientId: 'server',
    clientSeq: 0,
    version: 99,
    partition,
    offset,
    committedAt: NOW,
  }
}

export function record(e: Entry, bytes = 100): OutboxRecord {
  return {
    clientId: e.clientId,
    clientSeq: e.clientSeq,
    id: e.id,
    entity: e.entity,
    entry: e,
    bytes,
    at: NOW,
  }
}

export function appendedResult(e: Entry, partition: number, offset: number): AckResult {
  return {
    id: e.id,
    status: 'appended',
    version: e.clientSeq,
    partition,
    offset,
    committedAt: NOW,
    corrections: [],
  }
}

export function ackItem(e: Entry, result: AckResult): AckItem {
  return { record: record(e), result }
}

export function meta(patch: Partial<ClientMeta> = {}): ClientMeta {
  return {
    clientId: CLIENT,
    seqLast: 0,
    clientIds: [CLIENT],
    createdAt: NOW,
    outboxEntries: 0,
    outboxBytes: 0,
    correctionsUnseen: 0,
    n: 0,
    ...patch,
  }
}
