/**
 * The `onCommit` listeners of a store, told in order after each durable commit.
 *
 * Invariants:
 * 1. A listener's failure is its own: the commit stands and the other listeners still run.
 * 2. A commit that touched no partition is not told.
 */

export interface CommitListeners {
  add(listener: (partitions: readonly number[]) => void): () => void
  tell(partitions: readonly number[]): void
  clear(): void
}

/**
 * @example
 * const listeners = createCommitListeners()
 * const off = listeners.add((partitions) => wake(partitions))
 */
export function createCommitListeners(): CommitListeners {
  const listeners = new Set<(partitions: readonly number[]) => void>()
  return {
    add(listener) {
      listeners.add(listener)
      return () => listeners.delete(listener)
    },
    tell(partitions) {
      if (partitions.length === 0) return
      for (const listener of listeners) {
        try {
          listener(partitions)
        } catch {
          // Invariant 1.
        }
      }
    },
    clear() {
      listeners.clear()
    },
  }
}
