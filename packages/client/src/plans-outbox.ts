/**
 * What an append writes to the client store, and the meta record of a new or older database,
 * decided once for both implementations (IndexedDB and memory). Pure functions: no storage, no
 * clock.
 *
 * Invariants:
 * 1. `planAppend` allocates clientSeq from `seqLast + 1` and validates each entry before it is
 *    written; `checkedBatch` validates it again when read back (pair assertions); both refuse
 *    by throwing, so the caller writes nothing.
 * 2. `completedMeta` fills only the fields an older build's record lacks, and answers
 *    undefined when nothing needs filling, so a complete record is never rewritten.
 */
import type { Entry } from '@ledgerline/core'
import { assert, validateEntry } from '@ledgerline/core'
import type { AppendLimits, ClientMeta, MakeEntries, OutboxRecord } from './client-store.ts'
import { ClientError } from './errors.ts'

/** The meta record of a new (or wiped) database. */
export function newMeta(
  clientId: string,
  deviceSecret: string,
  now: number,
  tenant: string | null,
): ClientMeta {
  return {
    clientId,
    seqLast: 0,
    clientIds: [clientId],
    tenant,
    deviceSecret,
    recovering: false,
    log: null,
    createdAt: now,
    outboxEntries: 0,
    outboxBytes: 0,
    correctionsUnseen: 0,
    n: 0,
  }
}

/**
 * A stored meta record with every field of this layout: a record written by an older build
 * lacks the tenant (it was kept with the cursors), the device secret, the recovery flag and the
 * log identity. Undefined when nothing needs filling.
 */
export function completedMeta(
  found: ClientMeta,
  newId: () => string,
  tenant: string | undefined,
): ClientMeta | undefined {
  const partial = found as Partial<ClientMeta>
  const filled: ClientMeta = {
    ...found,
    tenant: partial.tenant ?? tenant ?? null,
    deviceSecret: partial.deviceSecret ?? newId(),
    recovering: partial.recovering ?? false,
    log: partial.log ?? null,
  }
  const same =
    filled.tenant === partial.tenant &&
    filled.deviceSecret === partial.deviceSecret &&
    filled.recovering === partial.recovering &&
    filled.log === partial.log
  return same ? undefined : filled
}

/**
 * The records and meta record one append writes (client store guarantee 2), or the `outbox_full`
 * error; nothing is written when this throws.
 */
export function planAppend(
  meta: ClientMeta,
  make: MakeEntries,
  limits: AppendLimits,
  now: number,
  bytesOf: (e: Entry) => number,
): { records: OutboxRecord[]; written: ClientMeta; bytes: number } {
  const entries = make(meta.clientId, meta.seqLast + 1)
  let bytes = 0
  const records: OutboxRecord[] = []
  entries.forEach((entry, i) => {
    // Pair assertion, first half: what goes into the outbox is a valid entry of ours.
    validateEntry(entry)
    assert(
      entry.clientId === meta.clientId && entry.clientSeq === meta.seqLast + 1 + i,
      'seq order',
    )
    const size = bytesOf(entry)
    bytes += size
    records.push({
      clientId: entry.clientId,
      clientSeq: entry.clientSeq,
      id: entry.id,
      entity: entry.entity,
      entry,
      bytes: size,
      at: now,
    })
  })
  if (
    meta.outboxEntries + entries.length > limits.entriesMax ||
    meta.outboxBytes + bytes > limits.bytesMax
  ) {
    throw new ClientError(
      'outbox_full',
      `outbox holds ${meta.outboxEntries} entries (${meta.outboxBytes} bytes); the limit is ${limits.entriesMax} entries, ${limits.bytesMax} bytes`,
    )
  }
  const written: ClientMeta = {
    ...meta,
    seqLast: meta.seqLast + entries.length,
    outboxEntries: meta.outboxEntries + entries.length,
    outboxBytes: meta.outboxBytes + bytes,
  }
  return { records, written, bytes }
}

/** Records read back in key order, checked again (guarantee 2) and cut at `bytesMax`. */
export function checkedBatch(records: readonly OutboxRecord[], bytesMax: number): OutboxRecord[] {
  const out: OutboxRecord[] = []
  let bytes = 0
  for (const record of records) {
    // Pair assertion, second half: what comes back out of the outbox is still valid.
    const entry = validateEntry(record.entry)
    assert(
      entry.id === record.id && entry.clientSeq === record.clientSeq,
      'outbox record matches its entry',
    )
    if (out.length > 0 && bytes + record.bytes > bytesMax) break
    bytes += record.bytes
    out.push(record)
  }
  return out
}
