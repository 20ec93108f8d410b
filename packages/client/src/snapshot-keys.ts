/**
 * What a snapshot is keyed by: the entity type and its explicit fold `version`
 * (`defineEntity({ version })`), and beside it a fingerprint of `reduce`'s source text that is
 * used only to warn in development (issue 12 case 6).
 *
 * Why not the source text as the key: a `reduce` that calls a helper or reads a constant keeps
 * its text when that logic changes, so a stale snapshot would become the base of every later
 * fold; and a minified build changes the text on every deploy, dropping every snapshot.
 *
 * Invariants:
 * 1. Two entity types share a snapshot key exactly when they have the same type name and the
 *    same fold version.
 * 2. The source fingerprint is deterministic for the same text (FNV-1a over type and text, with
 *    its length); it never decides which snapshot is used.
 */
import { foldKey } from '@ledgerline/core'

/**
 * The key of snapshots folded by `version` of entity type `type`.
 *
 * @example
 * snapshotTypeKey('stock', 2) // 'stock@2'
 */
export function snapshotTypeKey(type: string, version: number): string {
  return foldKey({ type, version })
}

/**
 * A fingerprint of `reduce`'s source text (layout 1 keyed snapshots by exactly this string).
 *
 * @example
 * reduceSource('stock', (s) => s) // 'stock:1f0c3a2b:18'
 */
export function reduceSource(type: string, reduce: (...args: never[]) => unknown): string {
  return fingerprint(type, String(reduce))
}

/**
 * The fingerprint of any source text (invariant 2), as `reduceSource` makes it.
 *
 * @example
 * fingerprint('order', 'byDay=(o) => o.day') // 'order:…:…'
 */
export function fingerprint(type: string, source: string): string {
  const text = `${type}\n${source}`
  let hash = 0x811c9dc5
  for (let i = 0; i < text.length; i++)
    hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193) >>> 0
  return `${type}:${hash.toString(16)}:${text.length}`
}
