// The browser test page of the restore scenarios (src/restore.web.test.ts): the client harness of
// page.ts plus a device backup of one database, taken and restored inside the page with the same
// copy code the Node tests use (test-support/idb-copy.ts: every store, key path, index, record).
import { harness } from './page.ts'
import { dumpDatabase, loadDatabase } from '../test-support/idb-copy.ts'
import type { DatabaseImage } from '../test-support/idb-copy.ts'

let image: DatabaseImage | undefined

const backups = {
  /** Copies database `dbName` into page memory (the client should be closed, as for a backup). */
  async take(dbName: string): Promise<number> {
    image = await dumpDatabase(indexedDB, dbName)
    return image.stores.reduce((n, s) => n + s.records.length, 0)
  },
  /** Writes the copy back over the database (the client must be closed). */
  async restore(): Promise<void> {
    if (image === undefined) throw new Error('no backup taken')
    await loadDatabase(indexedDB, image)
  },
}

// Named here so the bundler keeps page.ts (the client package is side-effect free).
;(globalThis as { harness?: typeof harness }).harness = harness
;(globalThis as { backups?: typeof backups }).backups = backups
export type Backups = typeof backups
