/**
 * The conformance suite of the server log: every `LogStore` (SQLite, PostgreSQL, the
 * simulation's) runs it, and a store is finished when it passes. Each test opens a fresh store
 * through `setup`, so tests never see each other's entries.
 *
 * What it proves, by the numbers of `log-store.ts`:
 * 1. atomic batches (one result per item, in order; a rejected call writes nothing);
 * 2. durable before resolve (what resolved is there after `reopen`, when the store can reopen);
 * 3. dense versions per entity, also under concurrent calls;
 * 4. gap-free offsets per partition in commit order;
 * 5. permanent dedupe by id and content (in the same call, in later calls, after reopen;
 *    refusals too; another content under a used id is `id_conflict`);
 * 6. `seq_gap` for a clientSeq gap, not recorded;
 * 7. facts with corrections (deterministic ids, one per offending entry however many resends,
 *    also to another entity of the tenant) and requests decided once (conflict, invariant);
 *    a client's `corrects` naming no entry it may write is refused `invalid`;
 * 8. concurrent calls racing on one entity: exactly one request with the same `expect` wins;
 *    the global bound on entries queued for commit (`overloaded`, nothing recorded);
 * 9. corrections sized and folded before they are written (an oversized one, one whose
 *    cross-entity target cannot fold it: `ledger.correction_failed`, no ledger poisoned);
 * 10. deferrals (`unknown_type`, `clock_ahead`): the high-water mark advances, a resend is
 *    decided again, and lands once the schema knows the type or the clocks agree;
 * 11. clientIds bound to the first subject that used them (`client_taken`, nothing recorded);
 * 12. acks carry references to the log's own corrections that the pusher may read;
 * 13. the log's identity (stable across reopen; `bumpGeneration` persists);
 * 14. entries moved by restore recovery (`origin`): a copy of an entry the log holds is
 *    `duplicate` under any numbering, never of another subject's entry;
 * plus the reads (partition pages with tenant filtering and `throughOffset`, entity ledgers,
 * heads, client records, partition heads) and `onCommit`.
 *
 * Where each part lives: this file opens a fresh store per test and registers the parts, each a
 * function of a `ContractHarness` (`log-store-contract-fixtures.ts`):
 * - `log-store-contract-writes.ts`: 1 to 6 and 8 (batches, order, dedupe, races, the bound,
 *   reopen);
 * - `log-store-contract-decisions.ts`: 7, 9 and the first part of 10 (corrections, requests,
 *   refusals, deferral of unknown types, the plain log);
 * - `log-store-contract-reads.ts`: pages, entity ranges, `onCommit`;
 * - `log-store-contract-edges.ts`: 5 by content, 7 for a client's `corrects`, 10 to 13;
 * - `log-store-contract-origins.ts`: 14;
 * - `log-store-contract-snapshots.ts`: ledger snapshots (`log-store.ts` guarantees 14–15), for
 *   stores that keep them.
 *
 * The store under test must be created with the `schema`, `partitions` and `now` handed to
 * `setup`.
 */
import { afterEach, beforeEach, describe } from 'vitest'
import type { Schema } from '@ledgerline/core'
import { decisionContract } from './log-store-contract-decisions.ts'
import { edgeContract } from './log-store-contract-edges.ts'
import { originContract } from './log-store-contract-origins.ts'
import { CONTRACT_PARTITIONS, CONTRACT_SCHEMA } from './log-store-contract-fixtures.ts'
import type {
  ContractHarness,
  LogStoreContractOptions,
  LogStoreContractSubject,
} from './log-store-contract-fixtures.ts'
import { readContract } from './log-store-contract-reads.ts'
import { retentionContract, retentionResendContract } from './log-store-contract-retention.ts'
import { snapshotContract } from './log-store-contract-snapshots.ts'
import { writeContract } from './log-store-contract-writes.ts'

export { CONTRACT_PARTITIONS, CONTRACT_SCHEMA } from './log-store-contract-fixtures.ts'

export type {
  LogStoreContractOptions,
  LogStoreContractSubject,
} from './log-store-contract-fixtures.ts'

/**
 * Registers the conformance suite for one `LogStore` implementation.
 *
 * @example
 * runLogStoreContract('sqlite', async ({ schema, partitions, now }) => {
 *   const file = join(mkdtempSync(join(tmpdir(), 'll-')), 'log.sqlite')
 *   const open = () => createSqliteStore({ file, schema, partitions, now })
 *   let store = await open()
 *   return { store, reopen: async () => { await store.close(); return (store = await open()) },
 *     cleanup: async () => { await store.close(); rmSync(dirname(file), { recursive: true }) } }
 * })
 */
export function runLogStoreContract(
  name: string,
  setup: (options: LogStoreContractOptions) => Promise<LogStoreContractSubject>,
): void {
  describe(`LogStore contract: ${name}`, () => {
    let subject: LogStoreContractSubject | undefined
    let clock = 1_700_000_000_000
    const now = () => clock
    const open = async (
      mode: 'typed' | 'plain' | Schema = 'typed',
      commitQueueEntriesMax?: number,
    ) => {
      const schema = mode === 'typed' ? CONTRACT_SCHEMA : mode === 'plain' ? undefined : mode
      subject = await setup({ schema, partitions: CONTRACT_PARTITIONS, now, commitQueueEntriesMax })
      return subject.store
    }
    const harness: ContractHarness = {
      open,
      subject: () => subject,
      async cleanup() {
        const s = subject
        subject = undefined
        if (s !== undefined) await s.cleanup()
      },
      now,
      advance: (ms) => {
        clock += ms
      },
    }

    beforeEach(() => {
      clock = 1_700_000_000_000
    })
    afterEach(async () => {
      const s = subject
      subject = undefined
      if (s !== undefined) await s.cleanup()
    })

    writeContract(harness)
    decisionContract(harness)
    readContract(harness)
    edgeContract(harness)
    originContract(harness)
    snapshotContract(harness)
    retentionContract(harness)
    retentionResendContract(harness)
  })
}
