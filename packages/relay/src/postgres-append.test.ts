// Goal: one group's transaction on PostgreSQL keeps its own invariants: a passing failure (a
// deadlock) starts the group again and commits it once, any other failure is thrown at once
// with nothing written, and a plan that needs a partition outside the lock set (a correction to
// an entity elsewhere) relocks with it and commits. Method: commitGroup on a migrated database
// of a private cluster, its pool's `connect` wrapped to count attempts and to fail on demand;
// what was written is read back through a store on the same database. Skipped, saying why,
// when no PostgreSQL binaries exist.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Pool } from 'pg'
import { entryId, partitionOf } from '@ledgerline/core'
import type { Entry, Schema } from '@ledgerline/core'
import { createEntityStates } from '@ledgerline/log'
import { CONTRACT_SCHEMA, createPostgresFixture } from '@ledgerline/testkit'
import { groupCall, groupEntry } from './pg-group.test-helper.ts'
import { nodeSha256 } from './node-crypto.ts'
import { commitGroup } from './postgres-append.ts'
import type { GroupContext } from './postgres-append.ts'
import { createPool } from './postgres-sql.ts'
import { createPostgresStore } from './postgres-store.ts'

const postgres = createPostgresFixture('a')
const PARTITIONS = 4
const CID = '000000000000000000000000000000a1'
const entry = (seq: number, entity: string, over: Partial<Entry> = {}) =>
  groupEntry(CID, seq, entity, over)

describe.skipIf(postgres.skipReason !== undefined)(
  `one PostgreSQL group transaction${postgres.skipNote}`,
  () => {
    beforeAll(async () => {
      await postgres.cluster()
    })
    afterAll(() => postgres.stop())

    /** A migrated database, a pool on it whose `connect` can be made to fail, and its context. */
    async function open(schema: Schema | undefined) {
      const url = await postgres.database()
      const migrating = await createPostgresStore({ url, schema, partitions: PARTITIONS })
      await migrating.close()
      const pool = createPool(url)
      const failures: Error[] = []
      let connects = 0
      const connect = pool.connect.bind(pool) as () => ReturnType<Pool['connect']>
      ;(pool as unknown as { connect: () => unknown }).connect = async () => {
        connects += 1
        const failure = failures.shift()
        if (failure !== undefined) throw failure
        return connect()
      }
      const context: GroupContext = {
        pool,
        partitions: PARTITIONS,
        schema,
        now: () => 1_700_000_100_000,
        hash: nodeSha256,
        states: createEntityStates(16),
        storeId: 'test-store',
        notify: true,
      }
      const readBack = async (entity: string) => {
        const store = await createPostgresStore({ url, schema, partitions: PARTITIONS })
        try {
          return await store.readEntity('acme', entity, 1, 100)
        } finally {
          await store.close()
        }
      }
      return {
        context,
        failNext: (error: Error) => failures.push(error),
        connects: () => connects,
        readBack,
        close: () => pool.end(),
      }
    }

    it('starts the group again after a passing failure and commits it once', async () => {
      const db = await open(undefined)
      try {
        db.failNext(Object.assign(new Error('deadlock detected'), { code: '40P01' }))
        const plan = await commitGroup(db.context, [groupCall(entry(1, 'stock/s1'))])
        expect(db.connects()).toBe(2)
        expect(plan.results[0]?.[0]).toMatchObject({ status: 'appended', version: 1 })
        expect((await db.readBack('stock/s1')).map((e) => e.id)).toEqual([entryId(CID, 1)])
      } finally {
        await db.close()
      }
    })

    it('throws a failure that does not pass at once and writes nothing', async () => {
      const db = await open(undefined)
      try {
        db.failNext(Object.assign(new Error('no such table'), { code: '42P01' }))
        await expect(commitGroup(db.context, [groupCall(entry(1, 'stock/s1'))])).rejects.toThrow(
          'no such table',
        )
        expect(db.connects()).toBe(1)
        expect(await db.readBack('stock/s1')).toEqual([])
      } finally {
        await db.close()
      }
    })

    it('relocks with the partition a correction needs and commits both', async () => {
      const db = await open(CONTRACT_SCHEMA)
      try {
        const payment = 'payment/p1'
        const order = orderElsewhere(payment)
        const declined = entry(1, payment, { kind: 'card.declined', data: { order } })
        const plan = await commitGroup(db.context, [groupCall(declined)])
        // The lock set held the payment's partition only; the correction's needed a second try.
        expect(db.connects()).toBe(2)
        const result = plan.results[0]?.[0]
        expect(result).toMatchObject({ status: 'appended', version: 1 })
        const corrections = (result as unknown as { corrections: { entity: string }[] }).corrections
        expect(corrections.map((c) => c.entity)).toEqual([order])
        expect((await db.readBack(order)).map((e) => e.kind)).toEqual(['order.balance_due'])
      } finally {
        await db.close()
      }
    })
  },
)

/** An order entity in another partition than `entity`, so its correction forces a relock. */
function orderElsewhere(entity: string): string {
  const home = partitionOf('acme', entity, PARTITIONS)
  for (let i = 1; ; i++) {
    const order = `order/o${i}`
    if (partitionOf('acme', order, PARTITIONS) !== home) return order
  }
}
