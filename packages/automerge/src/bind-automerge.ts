/**
 * `bindAutomerge`: a live Automerge document kept in a Ledgerline entity's ledger.
 *
 *   handle.change(fn) ──getLastLocalChange──► buffer ──(coalesceMs or bytesMax)──► append
 *   subscribe ──► load(entity).view (every change the client knows) ──► Automerge.loadIncremental
 *
 * Loading Automerge: this module imports `@automerge/automerge/slim`, which carries no WASM, so
 * the app decides how the WASM arrives (all Automerge entry points share one module state):
 * - Node (relay scripts, tests): `import '@automerge/automerge'` resolves to the Node entry,
 *   which reads the `.wasm` file synchronously; nothing else to do.
 * - Vite: `import { initializeWasm } from '@automerge/automerge/slim'` and
 *   `import wasmUrl from '@automerge/automerge/automerge.wasm?url'`, then
 *   `await initializeWasm(fetch(wasmUrl))`. Vite serves the 3.6 MB `.wasm` as an asset (cached by
 *   the service worker) and needs no WASM plugin. The default browser entry would import the
 *   `.wasm` as an ES module, which Vite does not do without a plugin, and the base64 entry adds
 *   about 4.8 MB of JavaScript to the bundle.
 * `bindAutomerge` refuses to start (`wasm_not_ready`) until the WASM is initialized.
 *
 * Invariants:
 * 1. Every local change is appended exactly once, inside a coalesced `automerge.update` entry;
 *    once appended it is in the outbox and survives reloads. Only changes still buffered (at most
 *    `coalesceMs` old) are lost on a crash; `flush()` and `destroy()` append them.
 * 2. The view (the bytes `automergeEntity`'s reduce folds: the latest snapshot and every change
 *    after it, plus the client's pending ones) is merged with `loadIncremental`, which skips
 *    changes the doc has and holds changes whose dependencies have not arrived yet; so order,
 *    duplicates and snapshots do not matter.
 * 3. Appends run one at a time in the order the changes were made; a failed append puts its
 *    bytes back at the front of the buffer and is reported through `onError`.
 * 4. Subscribers are called after every local change and after every view from the client that
 *    changed the document's heads.
 * 5. Changes over `AUTOMERGE_UPDATE_BYTES_MAX` (a document made offline, a long paste) are
 *    appended as parts of one group, in one `appendMany` when the client has it, and the view
 *    joins them before the document sees them. Only a change over `CRDT_UPDATE_BYTES_MAX` stays
 *    in the document (`too_large`).
 */
import * as A from '@automerge/automerge/slim'
import {
  appendCrdtDrafts,
  createClientId,
  CRDT_UPDATE_BYTES_MAX,
  crdtUpdateDrafts,
} from '@ledgerline/core'
import type { CrdtClient } from './crdt-client.ts'
import { automergeStateBytes, concat } from './automerge-entity.ts'
import type { AutomergeState } from './automerge-entity.ts'
import {
  AUTOMERGE_BUFFER_BYTES_MAX,
  AUTOMERGE_COALESCE_MS,
  AUTOMERGE_UPDATE_BYTES_MAX,
} from './limits.ts'

export interface BindAutomergeOptions {
  /** Actor id (hex) of this document; Automerge picks a random one when omitted. */
  readonly actor?: string | undefined
  /** Most ms a local change waits before it is appended; default `AUTOMERGE_COALESCE_MS`. */
  readonly coalesceMs?: number | undefined
  /** Most bytes of one appended entry; default and upper bound `AUTOMERGE_UPDATE_BYTES_MAX`. */
  readonly bytesMax?: number | undefined
  /** Told about appends that failed and limits that were met; the binding keeps running. */
  readonly onError?: ((error: AutomergeBindingError) => void) | undefined
}

export interface AutomergeHandle<T> {
  /** The current document (an immutable Automerge doc; a new one after every change). */
  doc(): A.Doc<T>
  /** Changes the document locally; the change is appended within `coalesceMs`. */
  change(fn: A.ChangeFn<T>): void
  /** Calls `listener` with the document after each local or remote change; returns the stop. */
  subscribe(listener: (doc: A.Doc<T>) => void): () => void
  /** Appends the buffered local changes now; resolves when they are in the outbox. */
  flush(): Promise<void>
  /** Flushes and stops listening. */
  destroy(): Promise<void>
}

export type AutomergeBindingErrorKind =
  | 'append_failed'
  | 'too_large'
  | 'buffer_full'
  | 'read_failed'
  | 'wasm_not_ready'

/** What `onError` is told, and what `bindAutomerge` throws when the WASM is not loaded. */
export class AutomergeBindingError extends Error {
  readonly kind: AutomergeBindingErrorKind
  constructor(kind: AutomergeBindingErrorKind, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'AutomergeBindingError'
    this.kind = kind
  }
}

/**
 * Binds an Automerge document to the ledger of `entity` (an entity of an `automergeEntity`
 * type). Resolves once the view the client already has is merged.
 *
 * @example
 * const notes = await bindAutomerge<{ text: string }>(client, 'handover/s7')
 * notes.change((d) => { d.text = 'Till 2 drawer sticks' })
 * notes.subscribe((d) => render(d.text))
 */
export async function bindAutomerge<T>(
  client: CrdtClient,
  entity: string,
  options: BindAutomergeOptions = {},
): Promise<AutomergeHandle<T>> {
  if (!A.isWasmInitialized()) {
    throw new AutomergeBindingError(
      'wasm_not_ready',
      "Automerge's WASM is not initialized: import '@automerge/automerge' (Node) or call " +
        'initializeWasm (browser) before bindAutomerge',
    )
  }
  const coalesceMs = options.coalesceMs ?? AUTOMERGE_COALESCE_MS
  const bytesMax = Math.min(
    options.bytesMax ?? AUTOMERGE_UPDATE_BYTES_MAX,
    AUTOMERGE_UPDATE_BYTES_MAX,
  )
  const onError = options.onError ?? (() => {})
  let doc: A.Doc<T> = options.actor === undefined ? A.init<T>() : A.init<T>(options.actor)
  const listeners = new Set<(doc: A.Doc<T>) => void>()
  let lastView: unknown
  let buffer: Uint8Array[] = []
  let bufferBytes = 0
  let timer: ReturnType<typeof setTimeout> | undefined
  let appending: Promise<void> = Promise.resolve()
  let reading: Promise<void> | undefined
  let readAgain = false
  let destroyed = false

  const notify = () => {
    for (const listener of listeners) listener(doc)
  }

  function capture(change: Uint8Array) {
    if (change.length > CRDT_UPDATE_BYTES_MAX) {
      onError(
        new AutomergeBindingError(
          'too_large',
          `a single Automerge change of ${change.length} bytes is over ` +
            `${CRDT_UPDATE_BYTES_MAX}; it stays in this document only`,
        ),
      )
      return
    }
    if (bufferBytes + change.length > AUTOMERGE_BUFFER_BYTES_MAX) {
      onError(
        new AutomergeBindingError('buffer_full', `over ${AUTOMERGE_BUFFER_BYTES_MAX} bytes unsent`),
      )
      return
    }
    if (bufferBytes > 0 && bufferBytes + change.length > bytesMax) void flush()
    buffer.push(change)
    bufferBytes += change.length
    // Invariant 5: changes over one entry go at once, in parts.
    if (bufferBytes > bytesMax) void flush()
    else timer ??= setTimeout(() => void flush(), coalesceMs)
  }

  function flush(): Promise<void> {
    if (timer !== undefined) clearTimeout(timer)
    timer = undefined
    if (buffer.length === 0) return appending
    const changes = buffer
    buffer = []
    bufferBytes = 0
    appending = appending.then(async () => {
      const bytes = changes.length === 1 ? (changes[0] as Uint8Array) : concat(...changes)
      try {
        const drafts = crdtUpdateDrafts('automerge', bytes, randomGroup(), bytesMax)
        if (drafts === undefined) {
          onError(new AutomergeBindingError('too_large', `changes over ${CRDT_UPDATE_BYTES_MAX}`))
          return
        }
        await appendCrdtDrafts(client, entity, drafts)
      } catch (error) {
        buffer.unshift(bytes)
        bufferBytes += bytes.length
        onError(
          new AutomergeBindingError('append_failed', 'appending Automerge changes failed', {
            cause: error,
          }),
        )
      }
    })
    return appending
  }

  function read(): Promise<void> {
    if (reading !== undefined) {
      readAgain = true
      return reading
    }
    reading = (async () => {
      do {
        readAgain = false
        let view: unknown
        try {
          view = (await client.load(entity)).view
        } catch (error) {
          onError(
            new AutomergeBindingError('read_failed', 'reading the view failed', { cause: error }),
          )
          return
        }
        if (destroyed) return
        applyView(view)
      } while (readAgain)
    })().finally(() => {
      reading = undefined
    })
    return reading
  }

  function applyView(view: unknown) {
    // The client hands out the same view object until something changed.
    if (view === lastView || typeof view !== 'object' || view === null) return
    lastView = view
    const bytes = automergeStateBytes(view as AutomergeState)
    if (!(bytes instanceof Uint8Array) || bytes.length === 0) return
    const before = A.getHeads(doc).join()
    doc = A.loadIncremental(doc, bytes)
    if (A.getHeads(doc).join() !== before) notify()
  }

  const unsubscribe = client.subscribe(entity, () => void read())
  await read()

  return {
    doc: () => doc,
    change(fn) {
      if (destroyed) throw new AutomergeBindingError('append_failed', 'the binding is destroyed')
      const before = A.getHeads(doc).join()
      const next = A.change(doc, fn)
      // A change function that changed nothing makes no change to append.
      if (A.getHeads(next).join() === before) return
      doc = next
      const change = A.getLastLocalChange(doc)
      if (change !== undefined) capture(change)
      notify()
    },
    subscribe(listener) {
      listeners.add(listener)
      return () => listeners.delete(listener)
    },
    flush,
    async destroy() {
      if (destroyed) return
      await flush()
      destroyed = true
      unsubscribe()
      listeners.clear()
    },
  }
}

/** A group id for the parts of one update: 128 random bits, as a client id is made. */
function randomGroup(): string {
  return createClientId((bytes) => void crypto.getRandomValues(bytes as Uint8Array<ArrayBuffer>))
}
