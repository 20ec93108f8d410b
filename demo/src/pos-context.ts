/** What every screen of a signed-in register reads: who it is, its client, and the store. */
import { createContext, useContext } from 'react'
import type { PosClient } from './pos-client.ts'
import type { OfflineLimits, Session } from './session.ts'
import type { StoreData } from './store-data.ts'

export interface Pos {
  readonly session: Session
  readonly client: PosClient
  readonly data: StoreData
  readonly limits: OfflineLimits
  /** When this register's client was opened (ms since the epoch). */
  readonly openedAt: number
  setLimits(limits: OfflineLimits): void
  /** Back to the sign-in, keeping this register's sales on the device. */
  signInAgain(): void
}

export const PosContext = createContext<Pos | null>(null)

export function usePos(): Pos {
  const pos = useContext(PosContext)
  if (pos === null) throw new Error('usePos needs a signed-in register above it')
  return pos
}
