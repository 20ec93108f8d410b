// Goal: the memory store is a faithful LogStore, so what the simulation proves on it holds for
// the contract every real store also passes. Method: run the conformance suite
// `runLogStoreContract` against `createMemoryLogStore`; the assignment to `LogStore` checks at
// compile time that it implements the interface.
import { runLogStoreContract } from '@ledgerline/testkit'
import type { LogStore } from './log-store.ts'
import { createMemoryLogStore } from './memory-store.ts'

runLogStoreContract('memory', async ({ schema, partitions, now, commitQueueEntriesMax }) => {
  const store: LogStore = createMemoryLogStore({ schema, partitions, now, commitQueueEntriesMax })
  return { store, cleanup: async () => store.close() }
})
