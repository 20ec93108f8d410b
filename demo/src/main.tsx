/**
 * The register's entry point: the network switch goes in before any socket is made, the
 * service worker is registered so the app shell opens offline, and the app renders.
 */
import { StrictMode } from 'react'
import { createRoot } from 'react-dom/client'
import { App } from './app.tsx'
import { installNetworkSwitch } from './network.ts'
import { watchStoreHub } from './store-hub.ts'
import './styles.css'

installNetworkSwitch()
// Before the first client opens: it learns whether this page's relay is a store hub.
watchStoreHub()

if ('serviceWorker' in navigator && import.meta.env.PROD) {
  // Service workers need a secure context: https, or http://localhost (not 127.0.0.1).
  navigator.serviceWorker.register('/service-worker.js').catch((error: unknown) => {
    console.warn('service worker not registered; the register will not open offline', error)
  })
}

const root = document.getElementById('root')
if (root === null) throw new Error('index.html has no #root')
createRoot(root).render(
  <StrictMode>
    <App />
  </StrictMode>,
)
