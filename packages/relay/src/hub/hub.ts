/**
 * A store hub: the relay started with an upstream (head office's URL and the hub's token). This
 * module wires the hub's parts and gives the sessions what differs on a hub (`SessionHub`): the
 * role and link state for `welcome`, protocol 3 at least, the store layer of subscriptions, and
 * `upstream` messages when the link changes.
 *
 *   registers ─► sessions ─► HubStore (store queue, mirror) ◄── UpstreamLink ◄─► head office
 *                              │  └─► StoreLayer ─► `store` messages      ▲
 *                              └─► Forwarder ─────────────────────────────┘
 *
 * Invariants:
 * 1. The hub's upstream clientId is made once and kept in the hub's file, so head office binds
 *    it to the hub's subject once and a restarted hub is the same client.
 * 2. Closing stops the forwarder (its batch in flight ends or is dropped: it stays queued), then
 *    the link, then the store; nothing queued is lost.
 * 3. The hub's world is injectable, Node's by default: the upstream socket class, the timers and
 *    clock of the link and the forwarder, and the random bytes of its clientId and jitter (a
 *    simulation runs the real hub on simulated time and network).
 */
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import type { Logger } from 'pino'
import { matchesPattern } from '@ledgerline/core'
import { PROTOCOL_VERSION_HUB_MIN } from '@ledgerline/protocol'
import type { LogIdentity, UpstreamState, WebSocketConstructor } from '@ledgerline/protocol'
import type { RelayTimers } from '../timers.ts'
import { createForwarder } from './forwarder.ts'
import type { Forwarder } from './forwarder.ts'
import { HUB_FILE, openHubStore } from './hub-store.ts'
import type { HubStore } from './hub-store.ts'
import { createStoreLayer } from './store-layer.ts'
import type { StoreLayer, StoreWatcher } from './store-layer.ts'
import { createUpstreamLink } from './upstream-link.ts'
import type { UpstreamLink } from './upstream-link.ts'

/** Where a hub forwards to. */
export interface UpstreamOptions {
  /**
   * Head office's sync URL, or an ordered list for a backup hub (the primary hub, then head
   * office): the link moves on when one does not welcome it (upstream-link.ts, invariant 6).
   */
  readonly url: string | readonly string[]
  /** The hub's token, or how to get a fresh one (a file read again, a command run again). */
  readonly token: string | (() => Promise<string>)
}

/** What a session does differently on a hub. */
export interface SessionHub {
  readonly protocolMin: number
  upstream(): UpstreamState
  /**
   * The read patterns a register may subscribe with here: those of its grants the hub's own
   * read grant at head office covers (the mirror holds nothing else, and cursors that passed
   * entries the mirror lacks would skip them for good after a failover).
   */
  readable(grants: readonly string[]): readonly string[]
  watchStore(watcher: StoreWatcher): () => void
  /** Head office's log as the hub last saw it (a session welcomed on another one ends). */
  log(): LogIdentity | undefined
}

export interface Hub {
  readonly store: HubStore
  readonly link: UpstreamLink
  readonly session: SessionHub
  /** Told when the link changes (the relay sends `upstream` to every session). */
  onUpstream(listener: (state: UpstreamState) => void): () => void
  close(): Promise<void>
}

/**
 * @example
 * const hub = createHub({ dataDir, upstream: { url: 'wss://hq/sync', token }, logger })
 * hub.store // the relay's LogStore on this hub
 */
export function createHub(options: {
  readonly dataDir: string
  readonly upstream: UpstreamOptions
  readonly logger: Logger
  /** Invariant 3: the upstream link's socket class (`ws`'s by default). */
  readonly WebSocket?: WebSocketConstructor | undefined
  /** Invariant 3: timers and clock of the link and the forwarder (Node's by default). */
  readonly timers?: RelayTimers | undefined
  /** Invariant 3: fills `bytes` with random bytes (Node's `randomBytes` by default). */
  readonly random?: ((bytes: Uint8Array) => void) | undefined
}): Hub {
  const store = openHubStore(join(options.dataDir, HUB_FILE))
  const token = options.upstream.token
  const random = options.random
  const clientId = store.meta('upstream_client_id', () => {
    if (random === undefined) return randomBytes(16).toString('hex')
    const bytes = new Uint8Array(16)
    random(bytes)
    return Buffer.from(bytes).toString('hex')
  })
  const link = createUpstreamLink({
    url: options.upstream.url,
    token: typeof token === 'string' ? async () => token : token,
    store,
    clientId,
    logger: options.logger,
    WebSocket: options.WebSocket,
    timers: options.timers,
    random,
  })
  const layer: StoreLayer = createStoreLayer(store)
  const forwarder: Forwarder = createForwarder(store, link, options.logger, options.timers)
  return {
    store,
    link,
    session: {
      protocolMin: PROTOCOL_VERSION_HUB_MIN,
      upstream: () => link.state(),
      readable: (grants) => readableWithin(grants, store.mirrorHead()?.read ?? []),
      watchStore: (watcher) => layer.watch(watcher),
      log: () => store.mirrorHead()?.log,
    },
    onUpstream: (listener) => link.onState(listener),
    async close() {
      await forwarder.close()
      await link.close()
      layer.close()
      await store.close()
    },
  }
}

/**
 * The patterns both grant lists allow, each the narrower of a pair where one covers the other.
 *
 * @example
 * readableWithin(['*'], ['sale/*']) // ['sale/*']
 */
export function readableWithin(
  grants: readonly string[],
  mirrored: readonly string[],
): readonly string[] {
  const out = new Set<string>()
  for (const g of grants) {
    for (const h of mirrored) {
      if (matchesPattern(h, g)) out.add(g)
      else if (matchesPattern(g, h)) out.add(h)
    }
  }
  return [...out]
}
