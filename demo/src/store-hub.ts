/**
 * Whether this page is served by a store hub (`npm run start:hub`), where head office is, and
 * the store's internet switch. A `--dev` hub answers `GET /dev/upstream` with its upstream URLs
 * and the switch; head office (or any relay that is not a `--dev` hub) answers 404.
 *
 *   page on the hub ─► registers' relays: [this hub, head office]  (they fail over, and back)
 *   "Store internet: off" ─► POST /dev/upstream {connected: false} ─► the hub's link is cut
 *                        └─► this page's sockets to head office fail too (network.ts)
 *
 * Why the page blocks head office too: in a store that lost its internet, a register can reach
 * the hub on the store's LAN but not head office; without the block, a register whose hub died
 * would fail over to head office on this machine, which no cut-off store could.
 *
 * Invariants:
 * 1. What was last learnt is kept in localStorage (per origin: every window of the store), so a
 *    register reloaded while the hub is down still knows its relays and that the store is cut.
 * 2. An unanswered check keeps what was known (the hub may be restarting); a 404 or a page that
 *    is not JSON (a relay without the route) means no hub.
 * 3. Listeners hear every change of `storeHub()`; the value is the same object until it changes.
 */
import { setStoreInternetOff } from './network.ts'
import { STORE_HUB_POLL_MS } from './limits.ts'

export interface StoreHub {
  /** The page's relay is a `--dev` store hub. */
  readonly isHub: boolean
  /** Head office's sync URLs as the hub forwards to them (empty when no hub). */
  readonly upstream: readonly string[]
  /** The store's internet switch (always true without a hub). */
  readonly internet: boolean
}

const KEY = 'ledgerline.storeHub'
const NONE: StoreHub = { isHub: false, upstream: [], internet: true }
const listeners = new Set<() => void>()
let current: StoreHub = load()
let polling: ReturnType<typeof setInterval> | undefined

export function storeHub(): StoreHub {
  return current
}

export function onStoreHub(cb: () => void): () => void {
  listeners.add(cb)
  return () => {
    listeners.delete(cb)
  }
}

/** The relays a register of this page syncs through, in order: this page's relay first. */
export function relayUrls(hub: StoreHub, own: string): readonly string[] {
  return hub.isHub ? [own, ...hub.upstream.filter((u) => u !== own)] : [own]
}

/** Asks the page's relay once now, then every `STORE_HUB_POLL_MS` while it is a hub. */
export function watchStoreHub(): () => void {
  void check()
  polling ??= setInterval(() => {
    if (current.isHub) void check()
  }, STORE_HUB_POLL_MS)
  return () => {
    clearInterval(polling)
    polling = undefined
  }
}

/** Cuts or restores the store's internet (the hub's link); resolves false when it failed. */
export async function setStoreInternet(connected: boolean): Promise<boolean> {
  try {
    const res = await fetch('/dev/upstream', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ connected }),
    })
    if (!res.ok) return false
    learn(parseAnswer(await res.json()))
    return true
  } catch {
    return false
  }
}

/** The hub's answer as a `StoreHub`; undefined for anything else. */
export function parseAnswer(body: unknown): StoreHub | undefined {
  if (typeof body !== 'object' || body === null) return undefined
  const { connected, upstream } = body as { connected?: unknown; upstream?: unknown }
  if (typeof connected !== 'boolean' || !Array.isArray(upstream)) return undefined
  const urls = upstream.filter((u): u is string => typeof u === 'string')
  return { isHub: true, upstream: urls, internet: connected }
}

async function check(): Promise<void> {
  let res: Response
  try {
    res = await fetch('/dev/upstream', { cache: 'no-store' })
  } catch {
    return // Invariant 2: the hub may be restarting.
  }
  // 404, or the app's page (a relay serving the demo answers unknown paths with it): no hub.
  const json = (res.headers.get('content-type') ?? '').startsWith('application/json')
  if (res.status === 404 || (res.ok && !json)) {
    learn(NONE)
    return
  }
  if (!res.ok) return
  try {
    learn(parseAnswer(await res.json()))
  } catch {
    // A broken answer: keep what was known.
  }
}

function learn(next: StoreHub | undefined): void {
  if (next === undefined) return
  const same =
    next.isHub === current.isHub &&
    next.internet === current.internet &&
    next.upstream.join(' ') === current.upstream.join(' ')
  if (same) return
  current = next
  localStorage.setItem(KEY, JSON.stringify(next))
  apply()
  for (const l of listeners) l()
}

function load(): StoreHub {
  try {
    const raw = localStorage.getItem(KEY)
    const hub = raw === null ? undefined : parseSaved(JSON.parse(raw) as unknown)
    return hub ?? NONE
  } catch {
    return NONE
  }
}

function parseSaved(value: unknown): StoreHub | undefined {
  if (typeof value !== 'object' || value === null) return undefined
  const v = value as { isHub?: unknown; internet?: unknown }
  if (v.isHub !== true) return NONE
  const hub = parseAnswer({ connected: v.internet, upstream: (value as StoreHub).upstream })
  return hub
}

/** The page's sockets to anywhere but its own relay go through the store's internet. */
function apply(): void {
  setStoreInternetOff(current.isHub && !current.internet)
}

apply()
