/**
 * External stores over the client, shaped for `useSyncExternalStore`.
 *
 * Terms: an *external store* (React's word) is `{ subscribe, getSnapshot }`. React calls
 * `getSnapshot` on every render and compares results with `Object.is`, so the value it returns
 * must stay the same object until something changed. (Neither is the client store, the device's
 * storage: these only read the client.)
 *
 * Invariants:
 * 1. `getSnapshot` returns the cached snapshot; the client is read only when it reports a
 *    change (or once when the external store is made), never during render.
 * 2. A read that the client answers with a promise replaces the value when it settles, and
 *    a later read always wins over an earlier one that settles late.
 * 3. After the last unsubscribe nothing of the external store stays registered with the client.
 */
import type {
  ClientLike,
  EntityState,
  MaybePromise,
  OutcomeLike,
  QueryOptionsLike,
  QueryResultLike,
} from './client-like.ts'

export interface ExternalStore<T> {
  subscribe(onStoreChange: () => void): () => void
  getSnapshot(): T
}

/**
 * An external store over one entity of the client.
 *
 * @example
 * const store = createEntityStore(client, 'stock/s1:espresso')
 * store.getSnapshot() // { view: { onHand: 3 }, confirmed: …, version: 2, pending: [] }
 */
export function createEntityStore<S>(
  client: ClientLike,
  entity: string,
): ExternalStore<EntityState<S> | undefined> {
  return createReadStore<EntityState<S> | undefined>(
    () => client.get(entity) as MaybePromise<EntityState<S>>,
    (onChange) => client.subscribe(entity, onChange),
    undefined,
  )
}

/** An external store over the client's status (`online`, `outboxEntries`, …). */
export function createStatusStore<T>(client: ClientLike): ExternalStore<T | undefined> {
  return createReadStore<T | undefined>(
    () => client.status() as MaybePromise<T>,
    (onChange) => client.onStatus(onChange),
    undefined,
  )
}

/**
 * An external store over one own entry's outcome (its stage, then head office's answer): read
 * again after every status change, and the same object while the answer is the same.
 *
 * @example
 * const store = createOutcomeStore(client, entry.id)
 * store.getSnapshot() // { _tag: 'outbox', stage: 'store' }
 */
export function createOutcomeStore(
  client: ClientLike,
  entryId: string,
): ExternalStore<OutcomeLike | undefined> {
  let last: OutcomeLike | undefined
  let lastKey = ''
  return createReadStore<OutcomeLike | undefined>(
    async () => {
      if (client.outcome === undefined) return undefined
      const next = await client.outcome(entryId)
      const key = JSON.stringify(next)
      if (key !== lastKey) {
        last = next
        lastKey = key
      }
      return last
    },
    (onChange) => client.onStatus(onChange),
    undefined,
  )
}

/** An external store over the client's corrections feed. */
export function createCorrectionsStore<T>(client: ClientLike): ExternalStore<readonly T[]> {
  return createReadStore<readonly T[]>(
    () => client.corrections() as MaybePromise<readonly T[]>,
    (onChange) => client.onCorrection(onChange),
    EMPTY,
  )
}

/**
 * The general form: `read` gives the current value (maybe a promise), `listen` registers a
 * change callback with the client. Exposed for app-made external stores (a pattern
 * subscription, say).
 */
export function createReadStore<T>(
  read: () => MaybePromise<T>,
  listen: (onChange: () => void) => () => void,
  initial: T,
): ExternalStore<T> {
  let current = initial
  let readSeq = 0
  let settledSeq = 0
  const listeners = new Set<() => void>()
  let stop: (() => void) | undefined

  const refresh = (): void => {
    const seq = ++readSeq
    let value: MaybePromise<T>
    try {
      value = read()
    } catch {
      // A read that throws (a closed client, say) keeps the last good value.
      return
    }
    if (isPromise(value)) {
      value.then(
        (v) => settle(seq, v),
        () => {},
      )
    } else {
      settle(seq, value)
    }
  }
  const settle = (seq: number, next: T): void => {
    if (seq < settledSeq) return
    settledSeq = seq
    if (Object.is(next, current)) return
    current = next
    for (const l of listeners) l()
  }

  refresh()
  return {
    subscribe(onStoreChange) {
      listeners.add(onStoreChange)
      if (stop === undefined) {
        stop = listen(refresh)
        // Changes between the first read and this subscription would otherwise be missed.
        refresh()
      }
      return () => {
        listeners.delete(onStoreChange)
        if (listeners.size === 0 && stop !== undefined) {
          stop()
          stop = undefined
        }
      }
    },
    getSnapshot: () => current,
  }
}

/**
 * An external store over a live query (`client.subscribeQuery`): `undefined` until the first
 * result, then each new result object (the client hands a new one only when it changed).
 *
 * @example
 * const store = createQueryStore(client, 'order/*', { where: { byDay: '2026-12-01' } })
 */
export function createQueryStore<S>(
  client: ClientLike,
  pattern: string,
  options: QueryOptionsLike | undefined,
): ExternalStore<QueryResultLike<S> | undefined> {
  const subscribeQuery = client.subscribeQuery
  if (subscribeQuery === undefined) throw new Error('this client has no subscribeQuery')
  // The client pushes results: the read gives the latest one, and each push is a change.
  let latest: QueryResultLike<S> | undefined
  return createReadStore<QueryResultLike<S> | undefined>(
    () => latest,
    (onChange) =>
      subscribeQuery.call(client, pattern, options, (result) => {
        latest = result as QueryResultLike<S>
        onChange()
      }),
    undefined,
  )
}

const EMPTY: readonly never[] = Object.freeze([])

function isPromise<T>(value: MaybePromise<T>): value is Promise<T> {
  return typeof (value as { then?: unknown } | null)?.then === 'function'
}
