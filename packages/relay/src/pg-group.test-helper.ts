// Entries and calls for the tests of one PostgreSQL group (postgres-append, postgres-rows,
// postgres-write): a client's entries numbered by `seq`, with clocks near 2023-11-14, in the
// tenant `acme`.
import { entryId } from '@ledgerline/core'
import type { Entry } from '@ledgerline/core'
import type { PlanCall } from '@ledgerline/log'

/** Entry `seq` of `clientId` on `entity`: a `stock.moved` fact unless `over` says otherwise. */
export function groupEntry(
  clientId: string,
  seq: number,
  entity: string,
  over: Partial<Entry> = {},
): Entry {
  return {
    id: entryId(clientId, seq),
    tenant: 'acme',
    entity,
    kind: 'stock.moved',
    data: { qty: 1 },
    intent: 'fact',
    clientId,
    clientSeq: seq,
    hlc: `${String(1_700_000_000_000 + seq).padStart(15, '0')}:00000:${clientId}`,
    occurredAt: 1_700_000_000_000,
    ...over,
  }
}

/** One call of tenant `acme` with these entries, none refused. */
export function groupCall(...entries: Entry[]): PlanCall {
  return { tenant: 'acme', items: entries.map((entry) => ({ entry })) }
}
