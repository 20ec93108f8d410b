/**
 * One group's transaction on the PostgreSQL log: connect, lock the head rows of the lock set,
 * read what the planner asks for, plan (`planGroup` of `@ledgerline/log`), write the plan and
 * the one NOTIFY, commit; tried again for a passing failure, started again with more
 * partitions when the plan needs one outside the lock set. The store (`postgres-store.ts`)
 * owns the pool, the group commit, the caches and the feed; this module is the two round trips
 * of its header's diagram. Its SQL text is in `postgres-sql.ts`, what it reads in
 * `postgres-rows.ts`, what it writes in `postgres-write.ts`.
 *
 * Terms as in `postgres-store.ts`: a *group* is the calls merged into one transaction; the
 * *lock set* is the partitions whose head rows it locks; an *attempt* is one transaction of the
 * group, which commits or asks to *relock* with more partitions.
 *
 * Invariants (numbered as in `postgres-store.ts`):
 * 1. Every decision is made against the database as it is under the lock: the plan reads only
 *    rows of partitions in the lock set, all read after the lock statement returned.
 * 3. Head rows are locked in ascending partition order and nothing else is locked before them;
 *    a plan that needs one more partition rolls back and starts again with it. So appends
 *    cannot deadlock one another.
 * 6. A failure that passes (deadlock, lock timeout, a racing unique insert, a lost connection)
 *    starts the group again, up to `PG_APPEND_ATTEMPTS_MAX` attempts with doubling waits from
 *    `PG_APPEND_RETRY_MS`; any other failure, or the last, is thrown. A broken connection is
 *    dropped from the pool, never handed to the next caller.
 * 9. Statements that need no answer in between go in one pipeline: begin, lock and the likely
 *    reads in one round trip; every row of the plan, the NOTIFY and the COMMIT in another. A
 *    COMMIT answered with anything but `COMMIT` is a failure.
 */
import type { Pool, PoolClient } from 'pg'
import { partitionOf, SERVER_CLIENT_ID } from '@ledgerline/core'
import type { Hash, Schema } from '@ledgerline/core'
import { joinKey, PlanMiss, planGroup } from '@ledgerline/log'
import type { EntityStates, Plan, PlanCall } from '@ledgerline/log'
import { encodeCommitPayload } from './postgres-commit-feed.ts'
import {
  PG_APPEND_ATTEMPTS_MAX,
  PG_APPEND_RETRY_MS,
  PG_LOCK_TIMEOUT_MS,
} from './postgres-limits.ts'
import type { Loaded } from './postgres-rows.ts'
import * as pgRows from './postgres-rows.ts'
import * as pgSql from './postgres-sql.ts'
import { encodeItems, writeQuery } from './postgres-write.ts'
import type { EncodedItems } from './postgres-write.ts'
import { RelayError } from './relay-error.ts'

/** What a group's transaction needs of its store. */
export interface GroupContext {
  readonly pool: Pool
  readonly partitions: number
  readonly schema: Schema | undefined
  readonly now: () => number
  readonly hash: Hash
  /** The store's folded entity states; read, never changed here (`remember` is the store's). */
  readonly states: EntityStates
  /** The store's id, named in its NOTIFY payload so its own feed skips it. */
  readonly storeId: string
  /** False to send no NOTIFY (engines without it). */
  readonly notify: boolean
}

/**
 * Decides and commits one group, retrying and relocking as needed (invariants 3 and 6); the
 * plan it returns is committed. Throws what the last attempt threw.
 *
 * @example
 * const plan = await commitGroup(context, calls) // plan.results[i] answers calls[i]
 */
export async function commitGroup(
  context: GroupContext,
  calls: readonly PlanCall[],
): Promise<Plan> {
  // Bodies do not depend on the plan: encode them before any lock is taken, once for all
  // attempts.
  const bodies = encodeItems(calls, context.hash)
  let extra = new Set<number>()
  let failures = 0
  for (;;) {
    let client: PoolClient | undefined
    let broken = false
    // A connection that dies while checked out emits 'error' outside any query; without a
    // listener that would crash the relay. Note it, and drop the connection on release.
    const onError = () => {
      broken = true
    }
    try {
      client = await context.pool.connect()
      client.on('error', onError)
      const outcome = await attemptGroup(context, client, calls, extra, bodies)
      client.removeListener('error', onError)
      client.release(broken ? true : undefined)
      client = undefined
      if (outcome._tag === 'committed') return outcome.plan
      // Invariant 3: more partitions are needed; nothing was written. Not a failure.
      extra = outcome.partitions
    } catch (error) {
      if (client !== undefined) {
        const drop = broken || pgSql.isConnectionError(error)
        if (!drop) await client.query('rollback').catch(() => undefined)
        client.removeListener('error', onError)
        // A broken connection is dropped rather than handed to the next caller.
        client.release(drop ? true : undefined)
      }
      failures++
      if (!pgSql.isPassing(error) || failures >= PG_APPEND_ATTEMPTS_MAX) throw error
      await sleep(PG_APPEND_RETRY_MS * 2 ** (failures - 1))
    }
  }
}

async function attemptGroup(
  context: GroupContext,
  client: PoolClient,
  calls: readonly PlanCall[],
  extra: ReadonlySet<number>,
  bodies: EncodedItems,
): Promise<Attempt> {
  const lockSet = new Set(extra)
  for (const call of calls) {
    for (const item of call.items) {
      lockSet.add(partitionOf(call.tenant, item.entry.entity, context.partitions))
    }
  }
  const locked = [...lockSet].sort((a, b) => a - b)
  const keys = pgRows.groupKeys(calls)
  // Invariant 9, one round trip: begin, lock the head rows in ascending order, and the reads
  // the plan will most likely need. PostgreSQL runs each read only after the lock statement
  // returned, with a snapshot of its own (read committed), so the reads see every commit of
  // whoever held the locks before.
  const [, lockResult, clientsResult, headsResult, originsResult] = await pgSql.pipeline(client, [
    { text: `begin; set local lock_timeout = ${PG_LOCK_TIMEOUT_MS}` },
    {
      name: 'ledgerline_lock_v1',
      text: pgSql.LOCK_SQL,
      values: [pgSql.intArray(locked)],
      types: pgSql.PG_TYPES,
    },
    pgSql.clientsQuery(keys.clients),
    pgSql.headsQuery(keys.entities),
    // `append-plan.ts` invariant 12 asks of every client item; a probe of two keys each.
    pgSql.originalsQuery(keys.origins),
  ])
  const heads = pgSql.rowsOf<{ partition: number; head: number }>(lockResult)
  const loaded: Loaded = {
    locked: lockSet,
    partitionHeads: new Map(heads.map((r) => [r.partition, r.head])),
    clients: new Map(),
    previous: new Map(),
    originals: new Map(),
    heads: new Map(),
  }
  pgRows.takeClients(keys.clients, pgSql.rowsOf(clientsResult), loaded)
  pgRows.takeOriginals(keys.origins, pgSql.rowsOf(originsResult), loaded)
  // Earlier results are needed only for resent entries (at or below the high-water mark) and
  // for server entries; usually there are none and this round trip is skipped.
  // So are the entries client entries' `corrects` name (`postgres-store.ts` invariant 10).
  const resent: [string, string][] = [...keys.corrects]
  for (const [tenant, id, clientId, seq] of keys.candidates) {
    const high = loaded.clients.get(joinKey(tenant, clientId))?.high
    if (clientId === SERVER_CLIENT_ID || (high !== undefined && seq <= high)) {
      resent.push([tenant, id])
    }
  }
  if (resent.length > 0) await pgRows.loadPrevious(client, resent, loaded)
  await pgRows.takeHeads(client, pgSql.rowsOf(headsResult), loaded, context.schema, context.states)
  const committedAt = context.now()
  const lookups = pgRows.lookupsOf(loaded)
  let plan: Plan
  for (;;) {
    try {
      plan = planGroup(
        {
          schema: context.schema,
          partitions: context.partitions,
          committedAt,
          lookups,
          hash: context.hash,
          digestOf: (entry) => bodies.digests.get(entry),
        },
        calls,
      )
      break
    } catch (error) {
      if (!(error instanceof PlanMiss)) throw error
      const need = error.need
      if (need.kind === 'entity' || need.kind === 'partition') {
        if (!lockSet.has(need.partition)) {
          await client.query('rollback')
          return { _tag: 'relock', partitions: new Set([...lockSet, need.partition]) }
        }
      }
      await pgRows.loadNeed(client, need, loaded, context.schema, context.states)
    }
  }
  // Invariants 5 (`postgres-store.ts`) and 9: every row of the plan and the one NOTIFY in one statement, sent
  // together with the COMMIT. Had the statement failed, PostgreSQL would answer the COMMIT
  // with ROLLBACK; the statement's error is what `sql.pipeline` throws then.
  const payload =
    plan.touched.length > 0 && context.notify
      ? encodeCommitPayload(context.storeId, plan.partitionHeads)
      : ''
  const [, commit] = await pgSql.pipeline(client, [
    writeQuery(plan, bodies, payload),
    { text: 'commit' },
  ])
  const tag = (commit as { command?: unknown } | undefined)?.command
  if (tag !== 'COMMIT') {
    throw new RelayError('store_failed', `append transaction ended with ${String(tag)}`)
  }
  return { _tag: 'committed', plan }
}

type Attempt = { _tag: 'committed'; plan: Plan } | { _tag: 'relock'; partitions: Set<number> }

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}
