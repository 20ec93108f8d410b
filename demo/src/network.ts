/**
 * The register's network switch: what "offline" means for the sync socket.
 *
 * Why it exists: browser offline emulation (DevTools "Offline", Playwright's
 * `context.setOffline`) fails new requests but leaves an open WebSocket running
 * (https://github.com/microsoft/playwright/issues/4910), so a register would keep syncing while
 * it claims to be offline. The client makes its sockets with `SwitchedWebSocket`: when the
 * browser goes offline (the `offline` event) or the "simulate offline" toggle is on, open sync
 * sockets are closed and new ones fail at once, exactly as when the store's internet is down.
 *
 * With a store hub (store-hub.ts), the store's internet can be off while the register's network
 * is up: then sockets to the page's own relay (the hub, on the store's LAN) go on, and sockets
 * to any other host (head office) fail at once, as they would from a cut-off store.
 *
 * Invariants:
 * 1. While offline, no socket made through the switch is open; while the store's internet is
 *    off, none to another host than the page's is.
 * 2. Listeners hear every change of `isNetworkOff()`; the app reconnects on the way back.
 */

const SIMULATE_KEY = 'ledgerline.simulateOffline'
const listeners = new Set<(off: boolean) => void>()
const sockets = new Set<WebSocket>()
let installed = false
let storeInternetOff = false

/** True when sync sockets are blocked (browser offline or the toggle on). */
export function isNetworkOff(): boolean {
  return !navigator.onLine || isSimulatedOffline()
}

export function isSimulatedOffline(): boolean {
  return sessionStorage.getItem(SIMULATE_KEY) === '1'
}

/** Turns this window's "simulate offline" toggle on or off (kept across reloads). */
export function setSimulatedOffline(off: boolean): void {
  if (off) sessionStorage.setItem(SIMULATE_KEY, '1')
  else sessionStorage.removeItem(SIMULATE_KEY)
  changed()
}

/** Calls `cb` with `isNetworkOff()` whenever it may have changed. */
export function onNetworkChange(cb: (off: boolean) => void): () => void {
  listeners.add(cb)
  return () => {
    listeners.delete(cb)
  }
}

/** The store's internet is off (store-hub.ts): only the page's own host stays reachable. */
export function setStoreInternetOff(off: boolean): void {
  if (storeInternetOff === off) return
  storeInternetOff = off
  if (off) {
    for (const s of sockets) if (!isOwnHost(s.url)) s.close(4000, 'store internet off')
  }
}

/** Listens to the browser's online/offline events; call once at start. */
export function installNetworkSwitch(): void {
  if (installed) return
  installed = true
  window.addEventListener('offline', changed)
  window.addEventListener('online', changed)
}

/** A WebSocket that honours the switch; hand it to the client as its `WebSocket`. */
export class SwitchedWebSocket extends WebSocket {
  constructor(url: string | URL, protocols?: string | string[]) {
    // Port 9 is refused by browsers outright, so the socket fails at once, as it would without
    // a network, and the client backs off and retries.
    const blocked = isNetworkOff() || (storeInternetOff && !isOwnHost(String(url)))
    super(blocked ? 'ws://127.0.0.1:9/' : url, protocols)
    sockets.add(this)
    this.addEventListener('close', () => sockets.delete(this))
  }
}

function isOwnHost(url: string): boolean {
  try {
    return new URL(url).host === location.host
  } catch {
    return false
  }
}

function changed(): void {
  const off = isNetworkOff()
  if (off) {
    for (const s of sockets) s.close(4000, 'register offline')
  }
  for (const l of listeners) l(off)
}
