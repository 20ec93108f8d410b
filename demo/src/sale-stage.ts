/**
 * Where a sale is, for its receipt badge: a sale is several entries (order, payments, day,
 * stock; one `appendMany`), and it is only as far as its least advanced entry.
 *
 *   any entry only on this device            → device       ("on this register")
 *   else any durable on the store hub only   → store        ("in the store")
 *   else (head office answered every one)    → head_office  ("at head office")
 *
 * Invariants:
 * 1. Pure over the client's `outcome(id)` answers; no answer yet reads as `device` (the entries
 *    are committed on the device before the receipt shows).
 * 2. The store's external store answers the same string until the stage changes, and reads
 *    again after every status change of the client (an outcome change always comes with one).
 */
import { createReadStore, type ExternalStore, useClient, useStore } from '@ledgerline/react'
import { useMemo } from 'react'
import type { Outcome, PosClient } from './pos-client.ts'

export type SaleStage = 'device' | 'store' | 'head_office'

/** The stage of a sale from its entries' outcomes (invariant 1). */
export function saleStage(outcomes: readonly (Outcome | undefined)[]): SaleStage {
  let stored = false
  for (const o of outcomes) {
    if (o === undefined) return 'device'
    if (o._tag !== 'outbox') continue
    if (o.stage === 'device') return 'device'
    stored = true
  }
  return stored ? 'store' : 'head_office'
}

/** The cashier's words for a stage. */
export function stageWords(stage: SaleStage): string {
  switch (stage) {
    case 'device':
      return 'on this register, not yet at head office'
    case 'store':
      return 'in the store (on the store hub), not yet at head office'
    case 'head_office':
      return 'at head office'
  }
}

export function createSaleStageStore(
  client: PosClient,
  entryIds: readonly string[],
): ExternalStore<SaleStage> {
  return createReadStore<SaleStage>(
    async () => saleStage(await Promise.all(entryIds.map((id) => client.outcome(id)))),
    (onChange) => client.onStatus(onChange),
    'device',
  )
}

/** The stage of the sale whose entries are `entryIds` (invariant 2). */
export function useSaleStage(entryIds: readonly string[]): SaleStage {
  const client = useClient<PosClient>()
  const key = entryIds.join(' ')
  // oxlint-disable-next-line react-hooks/exhaustive-deps -- keyed by the ids' text, not the array.
  const store = useMemo(() => createSaleStageStore(client, entryIds), [client, key])
  return useStore(store)
}
