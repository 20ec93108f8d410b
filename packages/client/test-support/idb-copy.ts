// Copies an IndexedDB database the way a device backup and restore does (a profile backup, a
// kiosk image, a VM snapshot): every object store with its key path, key generator and indexes,
// and every record with its key. Raw IndexedDB only, so the same code runs in Node on
// fake-indexeddb and in Chromium (bundled into the browser test page).
//
// Invariants:
// 1. `dumpDatabase` reads every store in ONE readonly transaction: the image is one consistent
//    moment of the database, as a copy of a closed browser profile is.
// 2. `loadDatabase` deletes the target database first and writes the whole image in the upgrade
//    transaction that creates it: a restore is all or nothing.

/** One object store of an image. */
export interface StoreImage {
  readonly name: string
  readonly keyPath: string | string[] | null
  readonly autoIncrement: boolean
  readonly indexes: readonly {
    readonly name: string
    readonly keyPath: string | string[]
    readonly unique: boolean
    readonly multiEntry: boolean
  }[]
  /** [primary key, value], in key order. */
  readonly records: readonly (readonly [IDBValidKey, unknown])[]
}

/** A whole database as a device backup holds it. */
export interface DatabaseImage {
  readonly name: string
  readonly version: number
  readonly stores: readonly StoreImage[]
}

/** Reads database `name` of `factory` into an image (structured-clone values, as stored). */
export async function dumpDatabase(factory: IDBFactory, name: string): Promise<DatabaseImage> {
  const db = await open(factory, name)
  try {
    const names = [...db.objectStoreNames]
    if (names.length === 0) return { name, version: db.version, stores: [] }
    const tx = db.transaction(names, 'readonly')
    const stores = await Promise.all(
      names.map(async (storeName): Promise<StoreImage> => {
        const store = tx.objectStore(storeName)
        const indexes = [...store.indexNames].map((indexName) => {
          const index = store.index(indexName)
          return {
            name: indexName,
            keyPath: index.keyPath,
            unique: index.unique,
            multiEntry: index.multiEntry,
          }
        })
        const records: [IDBValidKey, unknown][] = []
        await new Promise<void>((resolve, reject) => {
          const cursor = store.openCursor()
          cursor.onerror = () => reject(cursor.error)
          cursor.onsuccess = () => {
            const c = cursor.result
            if (c === null) {
              resolve()
              return
            }
            records.push([c.primaryKey, c.value])
            c.continue()
          }
        })
        return {
          name: storeName,
          keyPath: store.keyPath,
          autoIncrement: store.autoIncrement,
          indexes,
          records,
        }
      }),
    )
    return { name, version: db.version, stores }
  } finally {
    db.close()
  }
}

/** Replaces database `image.name` of `factory` with the image (deleted first, then rebuilt). */
export async function loadDatabase(factory: IDBFactory, image: DatabaseImage): Promise<void> {
  await deleteDatabase(factory, image.name)
  const db = await new Promise<IDBDatabase>((resolve, reject) => {
    const request = factory.open(image.name, image.version)
    request.onerror = () => reject(request.error)
    request.onblocked = () => reject(new Error(`restoring ${image.name}: blocked by an open tab`))
    request.onupgradeneeded = () => {
      const target = request.result
      for (const s of image.stores) {
        const store = target.createObjectStore(s.name, {
          keyPath: s.keyPath,
          autoIncrement: s.autoIncrement,
        })
        for (const i of s.indexes) {
          store.createIndex(i.name, i.keyPath, { unique: i.unique, multiEntry: i.multiEntry })
        }
        for (const [key, value] of s.records) {
          if (s.keyPath === null) store.put(value, key)
          else store.put(value)
        }
      }
    }
    request.onsuccess = () => resolve(request.result)
  })
  db.close()
}

/** Copies database `name` from one factory to another (or over itself, from an older image). */
export async function copyDatabase(from: IDBFactory, to: IDBFactory, name: string): Promise<void> {
  await loadDatabase(to, await dumpDatabase(from, name))
}

export function deleteDatabase(factory: IDBFactory, name: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const request = factory.deleteDatabase(name)
    request.onsuccess = () => resolve()
    request.onerror = () => reject(request.error)
    request.onblocked = () => reject(new Error(`deleting ${name}: blocked by an open connection`))
  })
}

/** Records of one store of an image (empty when the store does not exist). */
export function recordsOf(image: DatabaseImage, store: string): readonly unknown[] {
  return image.stores.find((s) => s.name === store)?.records.map(([, value]) => value) ?? []
}

function open(factory: IDBFactory, name: string): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    // No version: opens the database as it is, never upgrading it.
    const request = factory.open(name)
    request.onerror = () => reject(request.error)
    request.onsuccess = () => resolve(request.result)
  })
}
