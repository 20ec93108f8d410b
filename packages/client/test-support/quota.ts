// Quota error injection for fake-indexeddb: makes `add`/`put` on chosen object stores throw
// the way browsers report a full disk, either directly (QuotaExceededError) or wrapped in an
// AbortError whose cause is the quota error (https://dexie.org/docs/DexieErrors/Dexie.QuotaExceededError).
import 'fake-indexeddb/auto'

export interface QuotaInjection {
  /** Number of writes refused so far. */
  refused(): number
  restore(): void
}

export function injectQuota(options: {
  stores: readonly string[] | 'all'
  wrapped?: boolean
  /** Let this many writes through first (to fail in the middle of a transaction). */
  after?: number
}): QuotaInjection {
  const proto = globalThis.IDBObjectStore.prototype as unknown as Record<
    'add' | 'put',
    (...args: unknown[]) => unknown
  >
  const original = { add: proto.add, put: proto.put }
  let passed = 0
  let refused = 0
  for (const method of ['add', 'put'] as const) {
    proto[method] = function (this: IDBObjectStore, ...args: unknown[]) {
      const hit = options.stores === 'all' || options.stores.includes(this.name)
      if (hit && passed++ >= (options.after ?? 0)) {
        refused++
        const quota = new DOMException('The quota has been exceeded.', 'QuotaExceededError')
        if (!options.wrapped) throw quota
        const abort = new DOMException('The transaction was aborted.', 'AbortError')
        Object.defineProperty(abort, 'cause', { value: quota })
        throw abort
      }
      return original[method].apply(this, args)
    }
  }
  return {
    refused: () => refused,
    restore() {
      proto.add = original.add
      proto.put = original.put
    },
  }
}
