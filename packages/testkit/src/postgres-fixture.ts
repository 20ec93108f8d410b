/**
 * The PostgreSQL scaffolding of one test file: why its PostgreSQL tests are skipped (if they
 * are), one private cluster (`postgres-cluster.ts`) started on first use, a fresh database per
 * test, and the cluster stopped after the file. Every PostgreSQL test of the repository starts
 * its cluster this way.
 *
 * Terms: the *file's cluster* is the one `cluster()` starts; *fresh* databases are named
 * `<prefix><n>` in the order they are asked for.
 *
 * Invariants:
 * 1. At most one cluster runs per fixture: callers that ask at the same time share one start.
 * 2. `stop()` stops the cluster if one was started (waiting for a start under way) and forgets
 *    it; a later `cluster()` starts another. Call it in the file's `afterAll`.
 * 3. Without PostgreSQL binaries `skipReason` says why, and `skipNote` says it in the test's name,
 *    so the tests are skipped saying why, never silently passed.
 */
import { postgresSkipReason, startPostgresCluster } from './postgres-cluster.ts'
import type { PostgresCluster } from './postgres-cluster.ts'

export interface PostgresFixture {
  /** Why this file's PostgreSQL tests are skipped (no binaries); undefined when they run. */
  readonly skipReason: string | undefined
  /** ` (skipped: …)` when the tests are skipped, else empty: the end of a title (invariant 3). */
  readonly skipNote: string
  /** The file's cluster, started on first use (invariant 1). */
  cluster(): Promise<PostgresCluster>
  /** A new database of the file's cluster (`name`, else `<prefix><n>`); its URL. */
  database(name?: string): Promise<string>
  /** Invariant 2: stops the file's cluster, if one was started. */
  stop(): Promise<void>
}

/**
 * The PostgreSQL scaffolding of one test file; fresh databases are named `<prefix><n>`.
 *
 * @example
 * const pg = createPostgresFixture('t')
 * afterAll(() => pg.stop())
 * describe.skipIf(pg.skipReason !== undefined)(`PostgreSQL log${pg.skipNote}`, () => {
 *   it('opens', async () => { const url = await pg.database() })
 * })
 */
export function createPostgresFixture(prefix: string): PostgresFixture {
  const skipReason = postgresSkipReason()
  let started: Promise<PostgresCluster> | undefined
  let databases = 0
  const cluster = (): Promise<PostgresCluster> => {
    started ??= startPostgresCluster()
    return started
  }
  return {
    skipReason,
    skipNote: skipReason === undefined ? '' : ` (skipped: ${skipReason})`,
    cluster,
    async database(name) {
      const c = await cluster()
      return c.createDatabase(name ?? `${prefix}${++databases}`)
    },
    async stop() {
      const was = started
      started = undefined
      if (was !== undefined) (await was).stop()
    },
  }
}
