// Goal: the external stores give React stable values that change exactly when the client reports a
// change, handle clients that answer reads with promises, and let go of the client when the
// last subscriber leaves. Method: a fake client whose views and callbacks the test drives, and
// server rendering for the hooks' wiring through the provider.
import { createElement } from 'react'
import { renderToString } from 'react-dom/server'
import { describe, expect, it } from 'vitest'
import type { ClientLike, EntityState } from './client-like.ts'
import { LedgerlineProvider, useEntity, useStatus } from './hooks.ts'
import {
  createCorrectionsStore,
  createEntityStore,
  createOutcomeStore,
  createStatusStore,
} from './external-stores.ts'

describe('createEntityStore', () => {
  it('keeps the same value until the client reports a change', () => {
    const fake = createFakeClient()
    fake.views.set('stock/s1:a', snap(3))
    const store = createEntityStore<{ onHand: number }>(fake.client, 'stock/s1:a')
    const first = store.getSnapshot()
    expect(first?.view.onHand).toBe(3)
    // Reading again without a change must give the very same object (React compares by Object.is).
    expect(store.getSnapshot()).toBe(first)

    let notified = 0
    const stop = store.subscribe(() => notified++)
    fake.views.set('stock/s1:a', snap(2))
    fake.emit('stock/s1:a')
    expect(notified).toBe(1)
    expect(store.getSnapshot()?.view.onHand).toBe(2)

    stop()
    expect(fake.listenerCount()).toBe(0)
    fake.views.set('stock/s1:a', snap(1))
    fake.emit('stock/s1:a')
    expect(notified).toBe(1)
  })

  it('settles promised reads, and a later read wins over an earlier one that settles late', async () => {
    const fake = createFakeClient()
    const resolvers: ((s: EntityState) => void)[] = []
    fake.client.get = () => new Promise<EntityState>((resolve) => resolvers.push(resolve))
    const store = createEntityStore<number>(fake.client, 'order/x')
    expect(store.getSnapshot()).toBeUndefined()
    const stop = store.subscribe(() => {})
    expect(resolvers.length).toBe(2)
    resolvers[1]?.(snap(7))
    resolvers[0]?.(snap(1))
    await Promise.resolve()
    await Promise.resolve()
    expect(store.getSnapshot()?.view).toEqual({ onHand: 7 })
    stop()
  })
})

describe('createStatusStore and createCorrectionsStore', () => {
  it('follow onStatus and onCorrection', () => {
    const fake = createFakeClient()
    const status = createStatusStore<{ online: boolean }>(fake.client)
    const corrections = createCorrectionsStore<{ kind: string }>(fake.client)
    expect(status.getSnapshot()?.online).toBe(false)
    expect(corrections.getSnapshot()).toEqual([])
    const stops = [status.subscribe(() => {}), corrections.subscribe(() => {})]
    fake.state.status = { online: true }
    fake.state.corrections = [{ kind: 'stock.oversold' }]
    fake.emit('*')
    expect(status.getSnapshot()?.online).toBe(true)
    expect(corrections.getSnapshot().map((c) => c.kind)).toEqual(['stock.oversold'])
    for (const stop of stops) stop()
    expect(fake.listenerCount()).toBe(0)
  })
})

describe('hooks', () => {
  it('read the provider’s client', () => {
    const fake = createFakeClient()
    fake.views.set('stock/s1:a', snap(5))
    fake.state.status = { online: true }
    function Shelf() {
      const stock = useEntity<{ onHand: number }>('stock/s1:a')
      const status = useStatus<{ online: boolean }>()
      return createElement(
        'p',
        null,
        `${stock?.view.onHand ?? '?'} ${status?.online === true ? 'on' : 'off'}`,
      )
    }
    const html = renderToString(
      createElement(LedgerlineProvider, { client: fake.client }, createElement(Shelf)),
    )
    expect(html).toBe('<p>5 on</p>')
  })

  it('useEntity without a provider is a programmer error', () => {
    function Lost() {
      useEntity('stock/s1:a')
      return null
    }
    expect(() => renderToString(createElement(Lost))).toThrow(/LedgerlineProvider/)
  })
})

describe('createOutcomeStore', () => {
  it('follows an entry through its stages, the same object while the answer is the same', async () => {
    // Goal: a receipt badge re-renders when the stage moves (device → store → head office),
    // and not on every status change.
    const fake = createFakeClient()
    let answer: { _tag: string; stage?: 'device' | 'store' } = { _tag: 'outbox', stage: 'device' }
    fake.client.outcome = async () => ({ ...answer })
    const store = createOutcomeStore(fake.client, 'e-1')
    let notified = 0
    store.subscribe(() => notified++)
    await new Promise((r) => setTimeout(r, 0))
    const first = store.getSnapshot()
    expect(first).toEqual({ _tag: 'outbox', stage: 'device' })
    fake.emit('*')
    await new Promise((r) => setTimeout(r, 0))
    expect(store.getSnapshot()).toBe(first)
    answer = { _tag: 'outbox', stage: 'store' }
    fake.emit('*')
    await new Promise((r) => setTimeout(r, 0))
    expect(store.getSnapshot()).toEqual({ _tag: 'outbox', stage: 'store' })
    answer = { _tag: 'appended' }
    fake.emit('*')
    await new Promise((r) => setTimeout(r, 0))
    expect(store.getSnapshot()?._tag).toBe('appended')
    expect(notified).toBe(3)
  })
})

function snap(onHand: number): EntityState {
  return { view: { onHand }, confirmed: { onHand }, version: 1, pending: [], store: [] }
}

function createFakeClient() {
  const views = new Map<string, EntityState>()
  const listeners = new Map<string, Set<() => void>>()
  const state: { status: unknown; corrections: unknown[] } = {
    status: { online: false },
    corrections: [],
  }
  const on = (key: string, cb: () => void) => {
    let set = listeners.get(key)
    if (set === undefined) listeners.set(key, (set = new Set()))
    set.add(cb)
    return () => {
      set.delete(cb)
    }
  }
  const client: ClientLike = {
    get: (entity) => views.get(entity) ?? snap(0),
    subscribe: (entity, cb) => on(entity, cb as () => void),
    status: () => state.status,
    onStatus: (cb) => on('*', cb as () => void),
    corrections: () => state.corrections,
    onCorrection: (cb) => on('*', cb as () => void),
  }
  return {
    client,
    views,
    state,
    emit: (key: string) => {
      for (const cb of listeners.get(key) ?? []) cb()
    },
    listenerCount: () => [...listeners.values()].reduce((n, s) => n + s.size, 0),
  }
}
