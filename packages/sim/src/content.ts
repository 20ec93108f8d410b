/**
 * Content keys: one string per entry content, for the checkers and the oracle to compare
 * entries without caring about key order or how a codec handed the bytes back.
 *
 * Terms: the *content* of a client entry is everything its client made (the design's digest
 * input: id, tenant, entity, kind, data, intent, expect, corrects, clientId, clientSeq, hlc,
 * occurredAt); its *business* content is what the sale is (entity, kind, data, intent),
 * which stays the same when a restored device re-sends it under a new id.
 *
 * Invariants:
 * 1. Equal plain data gives equal keys whatever the key order; `undefined` fields are absent.
 * 2. Byte arrays are keyed by their bytes, whatever view holds them.
 * (Both as testkit's `stable` and `entryFingerprint`, which the model simulation's checks use.)
 */
import type { Entry } from '@ledgerline/core'
import { entryFingerprint, stable } from '@ledgerline/testkit'

/** The entry as its client made it. */
export const contentKey: (e: Entry) => string = entryFingerprint

/** The same as `contentKey`; for stored entries and corrections, whose content the log made. */
export const fullKey = contentKey

/** What the sale is, whatever id it travels under. */
export function businessKey(e: Pick<Entry, 'entity' | 'kind' | 'data' | 'intent'>): string {
  return stable({ entity: e.entity, kind: e.kind, data: e.data, intent: e.intent })
}

export { stable }

/** The op tag an entry carries in its data, if any (`history.ts`). */
export function opOf(e: { readonly data: unknown }): string | undefined {
  const data = e.data
  if (data === null || typeof data !== 'object' || Array.isArray(data)) return undefined
  const op = (data as Record<string, unknown>).op
  return typeof op === 'string' ? op : undefined
}
