/**
 * The register's service worker: precaches the app shell at install so a register that
 * reloads while offline still opens and sells (its sales live in IndexedDB, not here).
 *
 * Invariants:
 * 1. Only same-origin GETs of shell files are answered from the cache; the sync socket,
 *    /dev/token, /healthz and /metrics always go to the network.
 * 2. Navigations get the cached index.html when the network fails, so any URL of the app opens.
 * 3. A new build has a new cache name; activation deletes every older cache.
 */
const SHELL = '__SHELL__'
const CACHE = 'ledgerline-shell-__VERSION__'

self.addEventListener('install', (event) => {
  event.waitUntil(
    caches
      .open(CACHE)
      .then((cache) => cache.addAll(SHELL))
      .then(() => self.skipWaiting()),
  )
})

self.addEventListener('activate', (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  )
})

self.addEventListener('fetch', (event) => {
  const request = event.request
  if (request.method !== 'GET') return
  const url = new URL(request.url)
  if (url.origin !== self.location.origin) return
  if (request.mode === 'navigate') {
    // Network first keeps a fresh index.html online; the cached one opens the app offline.
    event.respondWith(
      fetch(request).catch(() => caches.match('/index.html').then((r) => r ?? Response.error())),
    )
    return
  }
  if (!SHELL.includes(url.pathname)) return
  // Built files have content hashes in their names, so the cached copy is always right.
  event.respondWith(caches.match(url.pathname).then((r) => r ?? fetch(request)))
})
