/**
 * The corrections the sync loop waits for (`sync.ts` invariant 7): the log positions an ack of
 * an own entry names as its corrections, kept until the subscription brought them.
 *
 * Terms: a *position* is a partition and an offset in the server log; the *received* cursors
 * are the stored cursor of each partition (what the subscription brought so far).
 *
 * Invariants:
 * 1. A position is awaited only for an entity in scope and only while it is past the received
 *    cursor of its partition; it is dropped as soon as the cursor reaches it.
 * 2. A partition with nothing awaited is not kept, so `size()` is 0 exactly when nothing is
 *    awaited.
 */
import type { AckItem } from './client-store.ts'

export interface AwaitedCorrections {
  /** An ack's results were applied: await the positions of their corrections (invariant 1). */
  await(items: readonly AckItem[], inScope: (entity: string) => boolean): void
  /** The stored cursors now: positions at or below them arrived. */
  received(cursors: Readonly<Record<number, number>>): void
  /** Positions of another log: forget them all. */
  clear(): void
  /** Partitions with positions awaited. */
  size(): number
}

/**
 * @example
 * const awaited = createAwaitedCorrections()
 * awaited.await(items, inScope)
 * awaited.received(applied.cursors)
 */
export function createAwaitedCorrections(): AwaitedCorrections {
  /** Correction positions (partition → offsets) not received yet, and the cursors. */
  const awaited = new Map<number, Set<number>>()
  let received: Readonly<Record<number, number>> = {}
  return {
    await(items, inScope) {
      for (const { result } of items) {
        if (result.status !== 'appended' && result.status !== 'duplicate') continue
        for (const c of result.corrections) {
          if (!inScope(c.entity) || c.offset <= (received[c.partition] ?? 0)) continue
          let offsets = awaited.get(c.partition)
          if (offsets === undefined) awaited.set(c.partition, (offsets = new Set()))
          offsets.add(c.offset)
        }
      }
    },
    received(cursors) {
      received = cursors
      for (const [partition, offsets] of awaited) {
        const cursor = received[partition] ?? 0
        for (const offset of offsets) if (offset <= cursor) offsets.delete(offset)
        if (offsets.size === 0) awaited.delete(partition)
      }
    },
    clear: () => awaited.clear(),
    size: () => awaited.size,
  }
}
