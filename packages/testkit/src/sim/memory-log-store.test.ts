// Goal: the simulation's server log is a faithful LogStore, so what the simulation proves holds
// for the contract every real store also passes. Method: run the conformance suite
// `runLogStoreContract` against `createMemoryLogStore`; assigning it to `LogStore` also checks
// at compile time that it implements the relay's interface exactly.
import type { LogStore } from '@ledgerline/relay'
import { runLogStoreContract } from '../log-store-contract.ts'
import { createMemoryLogStore } from './memory-log-store.ts'

runLogStoreContract('memory', async ({ schema, partitions, now }) => {
  const store: LogStore = createMemoryLogStore({ schema, partitions, now })
  return { store, cleanup: async () => store.close() }
})
