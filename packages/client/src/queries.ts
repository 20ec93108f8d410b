/**
 * `query` and `subscribeQuery`: reading many entities of one type at once through the indexes
 * the schema declares (`defineEntity({ indexes: { byDay: (order) => order.day } })`), from the
 * view records the client store keeps in the same write as the entries (client store
 * guarantee 10, `views.ts`).
 *
 * What a query sees: the *view* of each entity (confirmed state, then this device's pending
 * entries), exactly as the client store committed it: an `append` that resolved is in every
 * query made after it, and an entry from another device is in every query made after its page
 * was stored. A query never waits for the network.
 *
 *   query('order/*', { where: { byDay: '2026-12-01' }, orderBy: 'byDay', limit: 50 })
 *     ─► planQuery: one type, one index, a key range ─► clientStore.queryViews ─► rows
 *
 * Invariants:
 * 1. Bad input is a `ClientError` before anything is read: a pattern whose type part is not
 *    one literal type (`invalid`), a type the schema lacks (`unknown_type`), a type without
 *    `indexes`, an index it does not declare, a `where` over two indexes, a `where` and an
 *    `orderBy` over different indexes, a key that is not a string or a finite number, a
 *    `limit` outside 1..QUERY_ROWS_MAX (all `invalid`).
 * 2. `rows` holds at most `limit` rows, in index order (then entity name), or by entity name
 *    without an index; `more` says whether rows were cut.
 * 3. `subscribeQuery` calls back with the first result, then after every change of a matching
 *    entity (own appends, acks, pages, other tabs, a dropped history) whose new result differs;
 *    one query runs at a time per subscription and a change during it runs it again after.
 *    At most QUERY_SUBSCRIPTIONS_MAX subscriptions are live.
 * 4. An entity whose `reduce` threw is left out of results (views.ts invariant 3).
 */
import type { IndexValue, Schema } from '@ledgerline/core'
import { checkPattern, matchesPattern } from '@ledgerline/core'
import type { QueryOptions, QueryResult, QueryRow, WhereRange } from './client-api.ts'
import type { ClientStore, RangeEnd, ViewQuery } from './client-store.ts'
import { ClientError, fromLedgerError } from './errors.ts'
import { QUERY_ROWS_DEFAULT, QUERY_ROWS_MAX, QUERY_SUBSCRIPTIONS_MAX } from './limits.ts'
import { isIndexValue } from './views.ts'

export interface QueriesOptions {
  readonly schema: Schema
  readonly clientStore: Promise<Pick<ClientStore, 'queryViews'>>
  /** Listens to changes of entities matching a pattern (the entity cache's `subscribe`). */
  readonly listen: (pattern: string, onChange: () => void) => () => void
}

export interface Queries {
  query<S>(pattern: string, options?: QueryOptions): Promise<QueryResult<S>>
  subscribeQuery<S>(
    pattern: string,
    options: QueryOptions | undefined,
    onResult: (result: QueryResult<S>) => void,
  ): () => void
  /** Something changed that no entity's listener hears (history dropped): run every query. */
  refreshAll(): void
}

/**
 * @example
 * const queries = createQueries({ schema, clientStore, listen: cache.subscribe })
 * const { rows } = await queries.query('order/*', { where: { byDay: '2026-12-01' } })
 */
export function createQueries(options: QueriesOptions): Queries {
  const live = new Set<() => void>()

  async function query<S>(pattern: string, queryOptions?: QueryOptions): Promise<QueryResult<S>> {
    const plan = planQuery(options.schema, pattern, queryOptions)
    const store = await options.clientStore
    // One more than asked tells whether rows were cut (invariant 2).
    const records = await store.queryViews({ ...plan, limit: plan.limit + 1 })
    const rows: QueryRow<S>[] = []
    for (const r of records) {
      if (r.broken !== undefined) continue // invariant 4
      rows.push({ entity: r.entity, view: r.view as S, version: r.version })
    }
    const more = rows.length > plan.limit
    return { rows: more ? rows.slice(0, plan.limit) : rows, more }
  }

  return {
    query,
    subscribeQuery<S>(
      pattern: string,
      queryOptions: QueryOptions | undefined,
      onResult: (result: QueryResult<S>) => void,
    ): () => void {
      planQuery(options.schema, pattern, queryOptions) // invariant 1: throws now, not later
      if (live.size >= QUERY_SUBSCRIPTIONS_MAX) {
        throw new ClientError(
          'invalid',
          `${live.size} query subscriptions are live; at most ${QUERY_SUBSCRIPTIONS_MAX} are allowed`,
        )
      }
      let stopped = false
      let running = false
      let again = false
      let last: QueryResult<S> | undefined
      const run = (): void => {
        if (stopped) return
        if (running) {
          again = true
          return
        }
        running = true
        again = false
        query<S>(pattern, queryOptions)
          .then((result) => {
            if (stopped || (last !== undefined && sameResult(last, result))) return
            last = result
            onResult(result)
          })
          .catch(() => {
            // A closed or failing client store: keep the last result; status says why.
          })
          .finally(() => {
            running = false
            if (again) run()
          })
      }
      const unlisten = options.listen(pattern, run)
      live.add(run)
      run()
      return () => {
        stopped = true
        live.delete(run)
        unlisten()
      }
    },
    refreshAll() {
      for (const run of live) run()
    },
  }
}

/**
 * Checks a query and turns it into what the client store reads (invariant 1).
 *
 * @example
 * planQuery(schema, 'order/s7-*', { where: { byDay: { gte: '2026-12-01' } } })
 * // { type: 'order', index: 'byDay', lower: { value: '2026-12-01', open: false }, … }
 */
export function planQuery(
  schema: Schema,
  pattern: string,
  options: QueryOptions = {},
): Omit<ViewQuery, 'limit'> & { readonly limit: number } {
  try {
    checkPattern(pattern)
  } catch (error) {
    throw fromLedgerError(error)
  }
  const slash = pattern.indexOf('/')
  const type = slash < 0 ? pattern : pattern.slice(0, slash)
  if (slash < 0 || !/^[a-z][a-z0-9_-]*$/.test(type)) {
    throw invalid(`query pattern '${pattern}' must name one entity type: 'order/*', 'order/s7-*'`)
  }
  const entityType = schema.types.get(type)
  if (entityType === undefined) {
    throw new ClientError(
      'unknown_type',
      `schema has no entity type '${type}' (query '${pattern}')`,
    )
  }
  const indexes = entityType.indexes
  if (indexes === undefined) {
    throw invalid(`entity type '${type}' declares no indexes: add defineEntity({ indexes })`)
  }
  const known = (name: string): string => {
    if (!Object.hasOwn(indexes, name)) {
      const declared = Object.keys(indexes)
      throw invalid(
        `entity type '${type}' has no index '${name}' (it declares ${declared.join(', ') || 'none'})`,
      )
    }
    return name
  }
  const where = Object.entries(options.where ?? {})
  if (where.length > 1) throw invalid(`a query ranges over one index; where names ${where.length}`)
  const orderBy = typeof options.orderBy === 'string' ? { index: options.orderBy } : options.orderBy
  const whereIndex = where[0] === undefined ? undefined : known(where[0][0])
  const orderIndex = orderBy === undefined ? undefined : known(orderBy.index)
  if (whereIndex !== undefined && orderIndex !== undefined && whereIndex !== orderIndex) {
    throw invalid(`where (${whereIndex}) and orderBy (${orderIndex}) must name the same index`)
  }
  const direction = orderBy?.direction ?? 'asc'
  if (direction !== 'asc' && direction !== 'desc') {
    throw invalid(`orderBy.direction must be 'asc' or 'desc'`)
  }
  const limit = options.limit ?? QUERY_ROWS_DEFAULT
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > QUERY_ROWS_MAX) {
    throw invalid(`limit must be an integer from 1 to ${QUERY_ROWS_MAX}, got ${String(limit)}`)
  }
  const { lower, upper } = where[0] === undefined ? {} : rangeOf(where[0][0], where[0][1])
  const idPattern = pattern.slice(slash + 1)
  return {
    type,
    index: whereIndex ?? orderIndex,
    lower,
    upper,
    direction,
    limit,
    match: idPattern === '*' ? undefined : (entity: string) => matchesPattern(pattern, entity),
  }
}

function rangeOf(
  index: string,
  condition: IndexValue | WhereRange | undefined,
): { lower?: RangeEnd | undefined; upper?: RangeEnd | undefined } {
  if (typeof condition !== 'object' || condition === null) {
    const value = key(index, 'value', condition)
    return { lower: { value, open: false }, upper: { value, open: false } }
  }
  const c = condition as Record<string, unknown>
  for (const op of Object.keys(c)) {
    if (!['eq', 'gt', 'gte', 'lt', 'lte'].includes(op))
      throw invalid(`where.${index}: unknown operator '${op}' (eq, gt, gte, lt, lte)`)
  }
  if (c.eq !== undefined) {
    if (Object.keys(c).length > 1) throw invalid(`where.${index}: eq goes alone`)
    const value = key(index, 'eq', c.eq)
    return { lower: { value, open: false }, upper: { value, open: false } }
  }
  if (c.gt !== undefined && c.gte !== undefined)
    throw invalid(`where.${index}: gt or gte, not both`)
  if (c.lt !== undefined && c.lte !== undefined)
    throw invalid(`where.${index}: lt or lte, not both`)
  const low = c.gt ?? c.gte
  const high = c.lt ?? c.lte
  return {
    lower:
      low === undefined ? undefined : { value: key(index, 'gt', low), open: c.gt !== undefined },
    upper:
      high === undefined ? undefined : { value: key(index, 'lt', high), open: c.lt !== undefined },
  }
}

function key(index: string, op: string, value: unknown): IndexValue {
  if (!isIndexValue(value)) {
    throw invalid(`where.${index} ${op}: a key is a string or a finite number, got ${typeof value}`)
  }
  return value
}

function invalid(message: string): ClientError {
  return new ClientError('invalid', message)
}

/** Invariant 3: a result is told again only when a row or `more` changed. */
export function sameResult<S>(a: QueryResult<S>, b: QueryResult<S>): boolean {
  if (a.more !== b.more || a.rows.length !== b.rows.length) return false
  return a.rows.every((row, i) => {
    const other = b.rows[i] as QueryRow<S>
    return (
      row.entity === other.entity &&
      row.version === other.version &&
      deepEqual(row.view, other.view)
    )
  })
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false
  if (Array.isArray(a) !== Array.isArray(b)) return false
  const ka = Object.keys(a)
  const kb = Object.keys(b)
  if (ka.length !== kb.length) return false
  return ka.every(
    (k) =>
      Object.hasOwn(b, k) &&
      deepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]),
  )
}
