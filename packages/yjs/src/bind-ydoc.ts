/**
 * `bindYDoc`: a live `Y.Doc` kept in a Ledgerline entity's ledger.
 *
 *   local edit ──update event──► buffer ──(YJS_COALESCE_MS or YJS_UPDATE_BYTES_MAX)──► append
 *                                       (an update over one entry: its parts, in one appendMany)
 *   subscribe ──► load(entity).view ──Y.diffUpdate(view, doc's state vector)──► Y.applyUpdate
 *
 * Terms: *local* updates are those the app makes on the doc (any origin but the binding's own);
 * the *view* is the entity's state folded by `yjsEntity`'s reduce: the merge of every confirmed
 * entry (or the latest snapshot and the entries after it) and the client's pending ones.
 *
 * Invariants:
 * 1. Every local update is appended exactly once, inside a coalesced `yjs.update` entry; once
 *    appended it is in the outbox and survives reloads. Only updates still in the buffer (at
 *    most `YJS_COALESCE_MS` old) are lost on a crash; `flush()` and `destroy()` append them.
 * 2. Remote updates are applied with the binding as origin, so they are never appended again.
 * 3. The binding reads the view, not single entries: the view holds every edit the client knows
 *    whatever snapshots were taken, and only the part the doc lacks is applied.
 * 4. Applying an update twice is harmless (Yjs ignores structs it has), so the binding may see
 *    edits in any order, duplicated, or again after a reload.
 * 5. Appends run one at a time in the order the updates were made; an append that fails puts
 *    its bytes back at the front of the buffer and is reported through `onError`.
 * 6. An update over `YJS_UPDATE_BYTES_MAX` (a long paste, a document made offline) is appended as
 *    parts of one group (`crdt-parts.ts` of `@ledgerline/core`), all in one `appendMany` when the
 *    client has it (one outbox write: never half a group), and the view joins them before the
 *    doc sees them. Only an update over `CRDT_UPDATE_BYTES_MAX` stays in the doc (`too_large`).
 */
import {
  appendCrdtDrafts,
  createClientId,
  CRDT_UPDATE_BYTES_MAX,
  crdtUpdateDrafts,
} from '@ledgerline/core'
import * as Y from 'yjs'
import type { CrdtClient } from './crdt-client.ts'
import { YJS_BUFFER_BYTES_MAX, YJS_COALESCE_MS, YJS_UPDATE_BYTES_MAX } from './limits.ts'
import { yjsStateUpdate } from './yjs-entity.ts'
import type { YjsState } from './yjs-entity.ts'

export interface BindYDocOptions {
  /** The document to bind; a new `Y.Doc` when omitted (then `destroy()` destroys it). */
  readonly doc?: Y.Doc | undefined
  /** Most ms a local update waits before it is appended; default `YJS_COALESCE_MS`. */
  readonly coalesceMs?: number | undefined
  /** Most bytes of one appended entry; default and upper bound `YJS_UPDATE_BYTES_MAX`. */
  readonly bytesMax?: number | undefined
  /** Told about appends that failed and limits that were met; the binding keeps running. */
  readonly onError?: ((error: YjsBindingError) => void) | undefined
}

export interface YDocBinding {
  /** The live document: edit it as usual; remote edits appear in it. */
  readonly doc: Y.Doc
  /** Appends the buffered local updates now; resolves when they are in the outbox. */
  flush(): Promise<void>
  /** Flushes, stops listening, and destroys the doc if the binding created it. */
  destroy(): Promise<void>
}

export type YjsBindingErrorKind = 'append_failed' | 'too_large' | 'buffer_full' | 'read_failed'

/** What `onError` is told. Thrown by nothing: the binding keeps the edit in the `Y.Doc`. */
export class YjsBindingError extends Error {
  readonly kind: YjsBindingErrorKind
  constructor(kind: YjsBindingErrorKind, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'YjsBindingError'
    this.kind = kind
  }
}

/**
 * Binds a `Y.Doc` to the ledger of `entity` (an entity of a `yjsEntity` type). Resolves once the
 * view the client already has is applied.
 *
 * @example
 * const { doc, destroy } = await bindYDoc(client, 'catalog/s7')
 * doc.getMap('names').set('espresso-1kg', 'Espresso 1 kg') // appended within 200 ms
 * await destroy()
 */
export async function bindYDoc(
  client: CrdtClient,
  entity: string,
  options: BindYDocOptions = {},
): Promise<YDocBinding> {
  const doc = options.doc ?? new Y.Doc()
  const coalesceMs = options.coalesceMs ?? YJS_COALESCE_MS
  const bytesMax = Math.min(options.bytesMax ?? YJS_UPDATE_BYTES_MAX, YJS_UPDATE_BYTES_MAX)
  const onError = options.onError ?? (() => {})
  // A unique origin marks the updates this binding applies, so they are not appended back.
  const origin = Symbol(`ledgerline:${entity}`)
  let lastView: unknown
  let buffer: Uint8Array[] = []
  let bufferBytes = 0
  let timer: ReturnType<typeof setTimeout> | undefined
  let appending: Promise<void> = Promise.resolve()
  let reading: Promise<void> | undefined
  let readAgain = false
  let destroyed = false

  const onUpdate = (update: Uint8Array, updateOrigin: unknown) => {
    if (updateOrigin === origin || destroyed) return
    if (update.length > CRDT_UPDATE_BYTES_MAX) {
      onError(
        new YjsBindingError(
          'too_large',
          `a single Yjs update of ${update.length} bytes is over ${CRDT_UPDATE_BYTES_MAX}; ` +
            'it stays in this Y.Doc only',
        ),
      )
      return
    }
    if (bufferBytes + update.length > YJS_BUFFER_BYTES_MAX) {
      onError(new YjsBindingError('buffer_full', `over ${YJS_BUFFER_BYTES_MAX} bytes unsent`))
      return
    }
    if (bufferBytes > 0 && bufferBytes + update.length > bytesMax) void flush()
    buffer.push(update)
    bufferBytes += update.length
    // Invariant 6: an update over one entry goes at once, in parts.
    if (bufferBytes > bytesMax) void flush()
    else timer ??= setTimeout(() => void flush(), coalesceMs)
  }

  function flush(): Promise<void> {
    if (timer !== undefined) clearTimeout(timer)
    timer = undefined
    if (buffer.length === 0) return appending
    const updates = buffer
    buffer = []
    bufferBytes = 0
    appending = appending.then(async () => {
      const merged = updates.length === 1 ? (updates[0] as Uint8Array) : Y.mergeUpdates(updates)
      try {
        const drafts = crdtUpdateDrafts('yjs', merged, randomGroup(), bytesMax)
        if (drafts === undefined) {
          onError(new YjsBindingError('too_large', `merged updates over ${CRDT_UPDATE_BYTES_MAX}`))
          return
        }
        await appendCrdtDrafts(client, entity, drafts)
      } catch (error) {
        buffer.unshift(merged)
        bufferBytes += merged.length
        onError(
          new YjsBindingError('append_failed', 'appending a Yjs update failed', { cause: error }),
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
          onError(new YjsBindingError('read_failed', 'reading the view failed', { cause: error }))
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
    const update = yjsStateUpdate(view as YjsState)
    if (!(update instanceof Uint8Array)) return
    const missing = Y.diffUpdate(update, Y.encodeStateVector(doc))
    Y.applyUpdate(doc, missing, origin)
  }

  doc.on('update', onUpdate)
  const unsubscribe = client.subscribe(entity, () => void read())
  await read()

  return {
    doc,
    flush,
    async destroy() {
      if (destroyed) return
      await flush()
      destroyed = true
      unsubscribe()
      doc.off('update', onUpdate)
      if (options.doc === undefined) doc.destroy()
    },
  }
}

/** A group id for the parts of one update: 128 random bits, as a client id is made. */
function randomGroup(): string {
  return createClientId((bytes) => void crypto.getRandomValues(bytes as Uint8Array<ArrayBuffer>))
}
