/**
 * Shares one CRDT binding per (client, entity) between the components that show it: the
 * catalog grid has a card per item and each reads the same catalog document.
 *
 * Invariants:
 * 1. At most one binding per client and entity is open; every lease of it gets the same one.
 * 2. A binding is destroyed (its buffered edits appended) a moment after its last lease is
 *    released, not at once, so React's StrictMode remount (release, then lease again) reuses it.
 * 3. A binding that failed to open is forgotten, so the next lease tries again.
 * 4. When the network comes back, every open binding appends what it buffered at once: the app
 *    then replaces its client (see app.tsx), and an edit still buffered when the old client
 *    closes would stay in that binding's document only. The appends start in a microtask,
 *    before React renders the new client, and a client finishes appends it started.
 */
import { onNetworkChange } from '../network.ts'

/** What a component holds while it shows a document. */
export interface Lease<T> {
  readonly ready: Promise<T>
  release(): void
}

/**
 * Leases the binding of `entity` on `client`, opening it with `open` when none is open.
 *
 * @example
 * const lease = leaseBinding(client, 'catalog/s1:text', () => bindYDoc(client, 'catalog/s1:text'))
 * const { doc } = await lease.ready
 * lease.release()
 */
export function leaseBinding<T extends Binding>(
  client: object,
  entity: string,
  open: () => Promise<T>,
): Lease<T> {
  let byEntity = bindings.get(client)
  if (byEntity === undefined) {
    byEntity = new Map()
    bindings.set(client, byEntity)
  }
  const entities = byEntity
  let slot = entities.get(entity) as Slot<T> | undefined
  if (slot === undefined) {
    const ready = open()
    const created: Slot<T> = { ready, leases: 0, closing: undefined }
    ready.catch(() => {
      if (entities.get(entity) === created) entities.delete(entity)
      live.delete(created)
    })
    entities.set(entity, created as Slot<Binding>)
    live.add(created)
    stopFlushing ??= onNetworkChange(flushAll)
    slot = created
  }
  const held = slot
  if (held.closing !== undefined) clearTimeout(held.closing)
  held.closing = undefined
  held.leases++
  let released = false
  return {
    ready: held.ready,
    release() {
      if (released) return
      released = true
      held.leases--
      if (held.leases > 0) return
      held.closing = setTimeout(() => {
        if (held.leases > 0 || entities.get(entity) !== held) return
        entities.delete(entity)
        live.delete(held)
        held.ready.then((binding) => binding.destroy()).catch(warn)
      }, RELEASE_DELAY_MS)
    },
  }
}

/** Logs a binding's trouble; the document keeps working locally. */
export function warn(error: unknown): void {
  console.warn('CRDT document:', error)
}

// ---------------------------------------------------------------------------------------------

/** How long an unleased binding stays open, for a remount to pick it up again. */
const RELEASE_DELAY_MS = 1_000

interface Slot<T> {
  readonly ready: Promise<T>
  leases: number
  closing: ReturnType<typeof setTimeout> | undefined
}

interface Binding {
  flush(): Promise<void>
  destroy(): Promise<void>
}

const bindings = new WeakMap<object, Map<string, Slot<Binding>>>()
/** Every binding open or opening, of any client (invariant 4). */
const live = new Set<Slot<Binding>>()
let stopFlushing: (() => void) | undefined

function flushAll(): void {
  for (const slot of live) slot.ready.then((binding) => binding.flush()).catch(warn)
}
