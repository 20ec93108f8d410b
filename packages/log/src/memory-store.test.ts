// Goal: the memory store is a faithful LogStore, so what the simulation proves on it holds for
// the contract every real store also passes. Method: run the conformance suite
// `runLogStoreContract` against `createMemoryLogStore` (reopened over the same storage, as a
// relay restarted with a new schema); the assignment to `LogStore` checks at compile time that
// it implements the interface.
import { runLogStoreContract } from '@ledgerline/testkit'
import type { LogStore } from './log-store.ts'
import type { MemoryLogStore } from './memory-store.ts'
import { createMemoryLogStore } from './memory-store.ts'

runLogStoreContract('memory', async ({ schema, partitions, now, commitQueueEntriesMax }) => {
  let store: MemoryLogStore = createMemoryLogStore({
    schema,
    partitions,
    now,
    commitQueueEntriesMax,
  })
  const asLogStore: LogStore = store
  return {
    store: asLogStore,
    reopen: async (options = {}) => (store = await store.reopen(options)),
    cleanup: async () => store.close(),
  }
})
