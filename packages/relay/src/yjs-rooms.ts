/**
 * The rooms of the y-websocket endpoint (`yjs-endpoint.ts`): one live `Y.Doc` and awareness per
 * (tenant, entity), loaded from the log, fed by the log's commits, and written to the log in
 * coalesced appends through the endpoint's writer (`yjs-log-writer.ts`). The connections
 * (`yjs-connection.ts`) hand updates in; the rooms decide when they are durable and visible.
 *
 * Terms: a room's *version* is the last entity version applied from the log; its *pending*
 * updates are received and not yet appended; its *writers* the connections they came from; an
 * update is *durable* once its append resolved.
 *
 * Invariants (numbered as in `yjs-endpoint.ts`):
 * 2. Updates are coalesced per room (within `ROOM_COALESCE_MS`, up to `ROOM_UPDATE_BYTES_MAX`;
 *    a bigger one goes at once) and appended one flush after another, in arrival order.
 * 3. Durable first: the document changes only with what is durable, from the log or from a
 *    flush whose append resolved, and only then is it sent to the room's connections (not back
 *    to a flush's only writer, which has it). When an append fails its writers are closed
 *    (1011) and nobody sees it.
 * 4. Entries of other writers reach the room through `onCommit` and are applied in version
 *    order, parts joined first; one pull per room at a time (a commit meanwhile asks for one
 *    more), and a room applies each version at most once. The first pull starts from the latest
 *    snapshot (`crdt-snapshots.ts`).
 * 6. (part) The bytes pending per room and per endpoint are counted from `enqueue` until their
 *    append settled; the connections check them against `ROOM_PENDING_BYTES_MAX` and
 *    `YJS_PENDING_BYTES_MAX` before they enqueue.
 * 7. A room closes (its document and awareness destroyed) only once its last connection left
 *    and its pending updates are durable.
 */
import { createCrdtJoiner, partitionOf } from '@ledgerline/core'
import * as encoding from 'lib0/encoding'
import * as awarenessProtocol from 'y-protocols/awareness'
import * as Y from 'yjs'
import type { WebSocket } from 'ws'
import { readFromLatestSnapshot, readRange } from './crdt-snapshots.ts'
import { ROOM_COALESCE_MS, ROOM_UPDATE_BYTES_MAX } from './limits.ts'
import type { LogStore } from './log-store.ts'
import type { YjsLogWriter } from './yjs-log-writer.ts'
import { encodeSyncUpdate, MESSAGE_AWARENESS, send, updateOf } from './yjs-wire.ts'

export interface Room {
  readonly key: string
  readonly tenant: string
  readonly entity: string
  readonly partition: number
  readonly doc: Y.Doc
  readonly awareness: awarenessProtocol.Awareness
  /** Each connection with the awareness client ids it controls. */
  readonly conns: Map<WebSocket, Set<number>>
  /** The last version applied from the log. */
  version: number
  /**
   * Versions after `version` that this room's own flushes appended: their updates are in the
   * document already. Entries of the endpoint's writer that are not here (written by an
   * earlier room of the same entity, closed since) are applied like anyone's.
   */
  readonly written: Set<number>
  /** Resolves once the first pull from the log is applied. */
  ready: Promise<void>
  pulling: Promise<void> | undefined
  pullAgain: boolean
  /** Updates received and not yet appended, and the connections they came from. */
  pending: Uint8Array[]
  writers: Set<WebSocket>
  /** Bytes received and not yet durable (buffered or being appended). */
  pendingBytes: number
  timer: ReturnType<typeof setTimeout> | undefined
  appending: Promise<void>
  /** Parts of other writers' updates, until their group is complete (invariant 4). */
  readonly joiner: ReturnType<typeof createCrdtJoiner>
}

export interface YjsRooms {
  /** The room of (tenant, entity) if open. */
  get(tenant: string, entity: string): Room | undefined
  /** The room of (tenant, entity), opened and loading from the log if it was not. */
  open(tenant: string, entity: string): Room
  size(): number
  values(): IterableIterator<Room>
  /** Bytes pending in every room (invariant 6). */
  pendingBytes(): number
  /** Queues an update of `conn` for the room's next append (invariant 2). */
  enqueue(room: Room, conn: WebSocket, update: Uint8Array): void
  /** Appends what the room holds now; resolves when that append settled. */
  flush(room: Room): Promise<void>
  /** Closes the room once nobody is in it and its updates are durable (invariant 7). */
  closeWhenIdle(room: Room): Promise<void>
  /** Stops listening to the log's commits. */
  stop(): void
}

/**
 * @example
 * const rooms = createYjsRooms({ store, writer, onError })
 * const room = rooms.open('acme', 'doc/notes') // await room.ready, then rooms.enqueue(room, …)
 */
export function createYjsRooms(options: {
  readonly store: LogStore
  readonly writer: YjsLogWriter
  readonly onError: (error: unknown) => void
}): YjsRooms {
  const { store, writer, onError } = options
  const rooms = new Map<string, Room>()
  let pendingBytes = 0
  const stop = store.onCommit((partitions) => {
    for (const room of rooms.values()) {
      if (partitions.includes(room.partition)) void pull(room)
    }
  })

  function open(tenant: string, entity: string): Room {
    const key = keyOf(tenant, entity)
    const existing = rooms.get(key)
    if (existing !== undefined) return existing
    const doc = new Y.Doc({ gc: true })
    const room: Room = {
      key,
      tenant,
      entity,
      partition: partitionOf(tenant, entity, store.partitions),
      doc,
      awareness: new awarenessProtocol.Awareness(doc),
      conns: new Map(),
      version: 0,
      written: new Set(),
      ready: Promise.resolve(),
      pulling: undefined,
      pullAgain: false,
      pending: [],
      writers: new Set(),
      pendingBytes: 0,
      timer: undefined,
      appending: Promise.resolve(),
      joiner: createCrdtJoiner('yjs'),
    }
    // The server's own awareness state stays empty; only clients are present.
    room.awareness.setLocalState(null)
    // Invariant 3: the doc only changes with what is durable, from the log or a flush.
    doc.on('update', (update: Uint8Array, origin: unknown) => {
      const message = encodeSyncUpdate(update)
      const alone = origin instanceof Durable && origin.writers.size === 1 ? origin.writers : null
      for (const conn of room.conns.keys()) if (alone?.has(conn) !== true) send(conn, message)
    })
    room.awareness.on(
      'update',
      (
        { added, updated, removed }: { added: number[]; updated: number[]; removed: number[] },
        origin: unknown,
      ) => {
        const changed = [...added, ...updated, ...removed]
        const owner = room.conns.get(origin as WebSocket)
        if (owner !== undefined) {
          for (const id of added) owner.add(id)
          for (const id of removed) owner.delete(id)
        }
        const message = encodeAwareness(room.awareness, changed)
        for (const conn of room.conns.keys()) send(conn, message)
      },
    )
    room.ready = pull(room)
    rooms.set(key, room)
    return room
  }

  // Applies the entries after `room.version`, in version order, from the latest snapshot on
  // the first read. One pull per room at a time; commits meanwhile trigger one more.
  function pull(room: Room): Promise<void> {
    if (room.pulling !== undefined) {
      room.pullAgain = true
      return room.pulling
    }
    room.pulling = (async () => {
      do {
        room.pullAgain = false
        const entries =
          room.version === 0
            ? await readFromLatestSnapshot(store, room.tenant, room.entity)
            : await readRange(store, room.tenant, room.entity, room.version + 1)
        Y.transact(
          room.doc,
          () => {
            for (const entry of entries) {
              if (entry.version <= room.version) continue
              room.version = entry.version
              // This room's own flush: the document has it (applying it again would be a
              // no-op, but a costly one for a big update).
              if (entry.clientId === writer.clientId && room.written.delete(entry.version)) continue
              // Invariant 4: parts wait for the rest of their group.
              for (const whole of room.joiner.add(entry)) {
                const update = updateOf(whole)
                if (update !== undefined) Y.applyUpdate(room.doc, update, LOG_ORIGIN)
              }
            }
          },
          LOG_ORIGIN,
        )
      } while (room.pullAgain)
    })()
      .catch(onError)
      .finally(() => {
        room.pulling = undefined
      })
    return room.pulling
  }

  function enqueue(room: Room, conn: WebSocket, update: Uint8Array) {
    if (room.pendingBytes > 0 && room.pendingBytes + update.length > ROOM_UPDATE_BYTES_MAX) {
      void flush(room)
    }
    room.pending.push(update)
    room.writers.add(conn)
    room.pendingBytes += update.length
    pendingBytes += update.length
    // A big update goes at once (alone, in parts); small ones wait to be coalesced.
    if (room.pendingBytes >= ROOM_UPDATE_BYTES_MAX) void flush(room)
    else room.timer ??= setTimeout(() => void flush(room), ROOM_COALESCE_MS)
  }

  function flush(room: Room): Promise<void> {
    if (room.timer !== undefined) clearTimeout(room.timer)
    room.timer = undefined
    if (room.pending.length === 0) return room.appending
    const updates = room.pending
    const writers = room.writers
    room.pending = []
    room.writers = new Set()
    const bytes = updates.reduce((n, u) => n + u.length, 0)
    const merged = updates.length === 1 ? (updates[0] as Uint8Array) : Y.mergeUpdates(updates)
    room.appending = room.appending
      .then(async () => {
        try {
          const versions = await writer.append(room.tenant, room.entity, merged)
          for (const v of versions) if (v > room.version) room.written.add(v)
        } catch (error) {
          // Invariant 3: nobody saw it; its writers learn it failed and send it again.
          onError(error)
          for (const conn of writers) conn.close(1011, 'append failed; resend after reconnecting')
          return
        }
        Y.applyUpdate(room.doc, merged, new Durable(writers))
      })
      .catch(onError)
      .finally(() => {
        room.pendingBytes -= bytes
        pendingBytes -= bytes
      })
    return room.appending
  }

  async function closeWhenIdle(room: Room) {
    await flush(room)
    await room.appending
    if (room.conns.size > 0 || rooms.get(room.key) !== room) return
    rooms.delete(room.key)
    room.awareness.destroy()
    room.doc.destroy()
  }

  return {
    get: (tenant, entity) => rooms.get(keyOf(tenant, entity)),
    open,
    size: () => rooms.size,
    values: () => rooms.values(),
    pendingBytes: () => pendingBytes,
    enqueue,
    flush,
    closeWhenIdle,
    stop,
  }
}

/** An awareness message with the states of `clients` (y-websocket's `messageAwareness`). */
export function encodeAwareness(
  awareness: awarenessProtocol.Awareness,
  clients: readonly number[],
): Uint8Array {
  const encoder = encoding.createEncoder()
  encoding.writeVarUint(encoder, MESSAGE_AWARENESS)
  encoding.writeVarUint8Array(
    encoder,
    awarenessProtocol.encodeAwarenessUpdate(awareness, [...clients]),
  )
  return encoding.toUint8Array(encoder)
}

// ---------------------------------------------------------------------------------------------

const LOG_ORIGIN = Symbol('ledgerline:log')

function keyOf(tenant: string, entity: string): string {
  return `${tenant}\0${entity}`
}

/** The origin of a flush applied once durable: the connections whose updates it holds. */
class Durable {
  readonly writers: ReadonlySet<WebSocket>
  constructor(writers: ReadonlySet<WebSocket>) {
    this.writers = writers
  }
}
