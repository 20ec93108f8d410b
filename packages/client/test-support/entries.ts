// Entries, stored entries, corrections and ack results for unit tests of the client store and
// the sync modules: valid by `validateEntry`, with readable ids; the entries themselves are the
// contract suite's (testkit's client store fixtures).
import type { Entry, StoredEntry } from '@ledgerline/core'
import type { AckResult } from '@ledgerline/protocol'
import { clientStoreFixtures } from '@ledgerline/testkit'
import type { AckItem, ClientMeta, OutboxRecord } from '../src/client-store.ts'

/** The client id of a test database, and another client's. */
export const { CLIENT, OTHER, NOW } = clientStoreFixtures

/** A valid stock entry of `clientId` (the contract suite's, so both build the same). */
export const entry = clientStoreFixtures.entry
export const stored = clientStoreFixtures.stored

/** The log's first correction of `of`, stored at (partition, offset). */
export function correctionOf(of: Entry, partition: number, offset: number): StoredEntry {
  return clientStoreFixtures.correction(of, 0, partition, offset)
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

export function appendedResult(
  e: Entry,
  partition: number,
  offset: number,
): Extract<AckResult, { status: 'appended' | 'duplicate' }> {
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
    tenant: 't1',
    deviceSecret: 'de'.repeat(16),
    recovering: false,
    log: null,
    createdAt: NOW,
    outboxEntries: 0,
    outboxBytes: 0,
    correctionsUnseen: 0,
    n: 0,
    ...patch,
  }
}
