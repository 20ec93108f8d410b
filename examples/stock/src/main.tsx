import { LedgerlineProvider } from '@ledgerline/react'
import { StrictMode } from 'react'
import { createRoot } from 'react-dom/client'
import { App } from './app.tsx'
import { client } from './ledgerline.ts'

createRoot(document.getElementById('root') as HTMLElement).render(
  <StrictMode>
    <LedgerlineProvider client={client}>
      <App />
    </LedgerlineProvider>
  </StrictMode>,
)
