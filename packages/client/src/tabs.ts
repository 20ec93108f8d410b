/**
 * Tabs: which tab of an origin runs the socket for a database, and how tabs hear each other.
 *
 * Terms: the *leader* holds the Web Lock `ledgerline:<dbName>` and runs the sync loop; every
 * tab (leader or not) appends straight to IndexedDB and tells the others over a
 * BroadcastChannel of the same name.
 *
 * Invariants:
 * 1. At most one tab per database is leader at a time: the lock is exclusive, and the browser
 *    releases it when its holder closes or crashes, so a waiting tab takes over
 *    (https://developer.mozilla.org/docs/Web/API/Web_Locks_API).
 * 2. Where Web Locks are missing (Node, old browsers) this client is leader at once: there is
 *    no other tab to share a database with.
 * 3. Messages are hints ("look again"), never the data itself: IndexedDB stays the only
 *    source of truth, so a lost message costs a refresh, never an entry. The one exception is
 *    the store layer (`store`), which lives in the leader's memory only: the leader sends the
 *    lists of the entities that changed, at most TAB_STORE_ENTRIES_MAX entries a message, and
 *    the whole layer when a tab asks (`store_ask`). Losing one costs a stale store layer until
 *    the next change; the entries themselves are in other devices' outboxes.
 */
import type { Entry } from '@ledgerline/core'

export type TabMessage =
  /** Entities whose pending or confirmed entries changed; `outbox` when new entries wait. */
  | {
      readonly t: 'changed'
      readonly entities: readonly string[]
      readonly outbox: boolean
      readonly corrections: number
      /** Confirmed history was dropped (another server log): fold every entity again. */
      readonly reset?: boolean | undefined
    }
  /** The leader's view of the connection. */
  | {
      readonly t: 'status'
      readonly online: boolean
      readonly syncing: boolean
      readonly live: boolean
      readonly lastServerContactAt: number | null
      readonly heldReasons?: readonly { readonly code: string; readonly count: number }[]
      readonly paused?: boolean | undefined
      readonly relay?: { readonly url: string; readonly role: 'head_office' | 'hub' } | null
      readonly headOffice?: 'reachable' | 'unreachable' | 'unknown' | undefined
    }
  /** The leader's store layer of these entities (each list replaces the tab's own). */
  | {
      readonly t: 'store'
      readonly entities: readonly (readonly [string, readonly Entry[]])[]
      /** The lists are the whole layer: entities not named have none. */
      readonly whole?: boolean | undefined
    }
  /** A tab that does not lead asks the leader for its whole store layer. */
  | { readonly t: 'store_ask' }

export interface Tabs {
  /** Tells the other tabs. Messages from this tab never come back to it. */
  post(message: TabMessage): void
  isLeader(): boolean
  close(): void
}

export interface TabsOptions {
  readonly dbName: string
  readonly onLeader: () => void
  readonly onMessage: (message: TabMessage) => void
  /** Web Locks; `null`: this client leads at once (invariant 2). */
  readonly locks: LockManager | null
  /** The channel to the other tabs; `null`: no other tab hears this one. */
  readonly BroadcastChannel: typeof BroadcastChannel | null
  /** Runs a callback after the current task (the scheduler's `defer`). */
  readonly defer: (fn: () => void) => void
}

/**
 * @example
 * const tabs = createTabs({ dbName: 'till-1', onLeader: () => sync.start(), onMessage,
 *   locks: navigator.locks, BroadcastChannel, defer: queueMicrotask })
 */
export function createTabs(options: TabsOptions): Tabs {
  const name = `ledgerline:${options.dbName}`
  const locks = options.locks
  const Channel = options.BroadcastChannel
  let leader = false
  let closed = false
  let release: () => void = () => {}
  const abort = new AbortController()

  const channel = Channel === null ? null : new Channel(name)
  if (channel !== null) {
    channel.onmessage = (event: MessageEvent<TabMessage>) => {
      if (!closed) options.onMessage(event.data)
    }
  }

  if (locks === null) {
    leader = true
    options.defer(() => {
      if (!closed) options.onLeader()
    })
  } else {
    locks
      .request(name, { mode: 'exclusive', signal: abort.signal }, () => {
        if (closed) return undefined
        leader = true
        options.onLeader()
        // Hold the lock until this client closes; the browser also frees it if the tab dies.
        return new Promise<void>((resolve) => {
          release = resolve
        })
      })
      .catch(() => {
        // Aborted while waiting (the client closed first): nothing to release.
      })
  }

  return {
    post(message) {
      if (closed || channel === null) return
      try {
        channel.postMessage(message)
      } catch {
        // A closed channel or an uncloneable value: other tabs refresh on their next change.
      }
    },
    isLeader: () => leader,
    close() {
      if (closed) return
      closed = true
      leader = false
      abort.abort()
      release()
      channel?.close()
    },
  }
}
