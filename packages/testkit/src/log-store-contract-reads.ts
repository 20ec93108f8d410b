/**
 * The reads of the server log's conformance suite, registered by `runLogStoreContract` for
 * every store: partition pages, entity ranges and commit notifications.
 *
 * Terms: a *page* is one `readPartition(tenant, partition, after, limit)`; its `throughOffset`
 * is the offset the next page starts after.
 *
 * What it proves:
 * 1. a tenant's pages hold only its entries, in offset order; a full page ends at its last
 *    entry and the short last page reaches the partition head, past other tenants' entries;
 * 2. entity reads and heads never show another tenant's entities;
 * 3. `readEntity(from, limit)` returns versions `from ..` at most `limit`, empty past the head;
 * 4. `onCommit` listeners hear the touched partitions after the commit is readable, and nothing
 *    once unsubscribed.
 */
import { expect, it } from 'vitest'
import { partitionOf } from '@ledgerline/core'
import type { StoredEntry } from '@ledgerline/core'
import {
  client,
  CONTRACT_PARTITIONS,
  entitiesInPartition,
  sleep,
  waitFor,
} from './log-store-contract-fixtures.ts'
import type { ContractHarness } from './log-store-contract-fixtures.ts'

export function readContract(h: ContractHarness): void {
  it('pages a partition per tenant, with throughOffset past other tenants', async () => {
    // Goal: readPartition's paging and tenant filtering. Method: interleave two tenants'
    // entries in one partition; page through acme's with limit 2; a tenant never sees the
    // other's entries; throughOffset reaches the partition head on the last page.
    const store = await h.open()
    const acme = entitiesInPartition('acme', 'stock', 1, 2)
    const other = entitiesInPartition('other', 'stock', 1, 2)
    const ca = client(100, 'acme')
    const co = client(101, 'other')
    for (let i = 0; i < 5; i++) {
      await store.append('acme', [
        { entry: ca.next(acme[i % 2] as string, 'stock.moved', { qty: 1 }) },
      ])
      await store.append('other', [
        { entry: co.next(other[i % 2] as string, 'stock.moved', { qty: 1 }) },
      ])
    }
    const heads = await store.partitionHeads()
    expect(heads[1]).toBe(10)
    const seen: StoredEntry[] = []
    const throughs: number[] = []
    let after = 0
    for (let pages = 0; pages < 10; pages++) {
      const page = await store.readPartition('acme', 1, after, 2)
      seen.push(...page.entries)
      throughs.push(page.throughOffset)
      after = page.throughOffset
      if (page.entries.length < 2) break
    }
    // Full pages end at their last entry; the short last page reaches the partition head.
    expect(throughs).toEqual([3, 7, 10])
    expect(seen.map((e) => e.tenant)).toEqual(Array(5).fill('acme'))
    expect(seen.map((e) => e.offset)).toEqual([1, 3, 5, 7, 9])
    const rest = await store.readPartition('other', 1, 0, 100)
    expect(rest.entries.map((e) => e.offset)).toEqual([2, 4, 6, 8, 10])
    expect(rest.throughOffset).toBe(10)
    const empty = await store.readPartition('nobody', 1, 0, 100)
    expect(empty).toEqual({ entries: [], throughOffset: 10 })
    // Other tenants' entities are invisible to entity reads and heads too.
    expect(await store.readEntity('other', acme[0] as string, 1, 10)).toEqual([])
    expect(await store.head('other', acme[0] as string)).toEqual({ version: 0, offset: 0 })
  })

  it('reads an entity from a version with a limit', async () => {
    // Goal: readEntity's range. Method: 7 entries; read from 3 with limit 2, then to the end.
    const store = await h.open()
    const c = client(110)
    for (let i = 0; i < 7; i++) {
      await store.append('acme', [{ entry: c.next('order/o', 'order.line', { i }) }])
    }
    const part = await store.readEntity('acme', 'order/o', 3, 2)
    expect(part.map((e) => e.version)).toEqual([3, 4])
    expect(part.map((e) => (e.data as { i: number }).i)).toEqual([2, 3])
    expect((await store.readEntity('acme', 'order/o', 6, 100)).map((e) => e.version)).toEqual([
      6, 7,
    ])
    expect(await store.readEntity('acme', 'order/o', 8, 100)).toEqual([])
  })

  it('tells onCommit listeners the touched partitions after the commit', async () => {
    // Goal: onCommit. Method: a listener records partitions and whether the entry was
    // readable when it was called; after unsubscribing it hears nothing.
    const store = await h.open()
    const c = client(120)
    const heard: number[][] = []
    let readable = true
    const off = store.onCommit((partitions) => {
      heard.push([...partitions])
      void store.head('acme', 'stock/a').then((h) => {
        if (h.version === 0) readable = false
      })
    })
    await store.append('acme', [{ entry: c.next('stock/a', 'stock.moved', { qty: 1 }) }])
    await waitFor(() => heard.length > 0)
    expect(heard[0]).toContain(partitionOf('acme', 'stock/a', CONTRACT_PARTITIONS))
    expect(readable).toBe(true)
    off()
    const n = heard.length
    await store.append('acme', [{ entry: c.next('stock/a', 'stock.moved', { qty: 1 }) }])
    await sleep(50)
    expect(heard.length).toBe(n)
  })
}
