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
 */
import type { Entry } from '@ledgerline/core'

/** The entry as its client made it. */
export function contentKey(e: Entry): string {
  return stable({
    id: e.id,
    tenant: e.tenant,
    entity: e.entity,
    kind: e.kind,
    data: e.data,
    intent: e.intent,
    expect: e.expect,
    corrects: e.corrects,
    clientId: e.clientId,
    clientSeq: e.clientSeq,
    hlc: e.hlc,
    occurredAt: e.occurredAt,
  })
}

/** The same as `contentKey`; for stored entries and corrections, whose content the log made. */
export const fullKey = contentKey

/** What the sale is, whatever id it travels under. */
export function businessKey(e: Pick<Entry, 'entity' | 'kind' | 'data' | 'intent'>): string {
  return stable({ entity: e.entity, kind: e.kind, data: e.data, intent: e.intent })
}

/**
 * JSON with sorted keys (invariants 1 and 2).
 *
 * @example
 * stable({ b: 1, a: [2] }) === stable({ a: [2], b: 1 }) // true
 */
export function stable(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v instanceof Uint8Array) return { bytes: Array.from(v) }
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
      const o = v as Record<string, unknown>
      return Object.fromEntries(
        Object.keys(o)
          .filter((k) => o[k] !== undefined)
          .sort()
          .map((k) => [k, o[k]]),
      )
    }
    return v
  })
}
