// The browser test page: bundled by esbuild (web-test/harness.ts) and driven by Playwright
// from src/browser.test.ts. It records every IndexedDB transaction the client opens (to check
// durability) and exposes a small `harness` object on window.
import { createClient, type Client, type ClientStatus } from '../src/index.ts'
import { schema } from '../test-support/schema.ts'

interface TxRecord {
  readonly stores: string
  readonly mode: string
  readonly durability: string
  /** ms since page load when opened, and how long until it completed (-1: not yet). */
  readonly at: number
  ms: number
}

const transactions: TxRecord[] = []
const original = IDBDatabase.prototype.transaction
IDBDatabase.prototype.transaction = function (
  this: IDBDatabase,
  names: string | string[],
  mode?: IDBTransactionMode,
  options?: IDBTransactionOptions,
) {
  const record: TxRecord = {
    stores: [names].flat().sort().join(','),
    mode: mode ?? 'readonly',
    durability: options?.durability ?? 'default',
    at: performance.now(),
    ms: -1,
  }
  transactions.push(record)
  const tx = original.call(this, names, mode, options)
  tx.addEventListener('complete', () => {
    record.ms = performance.now() - record.at
  })
  return tx
} as typeof IDBDatabase.prototype.transaction

let client: Client | undefined

const harness = {
  start(options: { url: string; token: string; dbName: string }): void {
    client = createClient({ ...options, schema })
  },
  async append(entity: string, count: number, tag: string): Promise<string[]> {
    const ids: string[] = []
    for (let i = 0; i < count; i++) {
      const entry = await (client as Client).append(entity, 'order.line', { tag, i })
      ids.push(entry.id)
    }
    return ids
  },
  status(): ClientStatus {
    return (client as Client).status()
  },
  async synced(timeoutMs: number): Promise<string> {
    return (await (client as Client).synced({ timeoutMs }))._tag
  },
  transactions: () => transactions,
  async close(): Promise<void> {
    await client?.close()
  },
}

;(globalThis as { harness?: typeof harness }).harness = harness
export type Harness = typeof harness
export { harness }
