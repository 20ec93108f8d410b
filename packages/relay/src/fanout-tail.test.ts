// Goal: the shared tails of `fanout-tail.ts` change how live entries are read and encoded, never
// what a subscription gets: exactly its tenant's entries in scope and grants, per partition in
// offset order without gaps, byte for byte what `encodeMessage` would have sent, also for
// commits another relay made and for subscriptions that lag past the tail.
// Method: a page spliced by `encodeEntriesPage` is compared with `encodeMessage`'s; then two
// relays share one SQLite log with a tiny tail (4 entries): writers of two tenants push
// interleaved, concurrent batches to one relay while many subscriptions with different scopes,
// tenants and grants (on both relays) take them live; one subscription stops granting credit
// until the writers are done, so its cursor falls behind the tail; every subscription must end
// with exactly what the log holds for it.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { matchesAny } from '@ledgerline/core'
import type { StoredEntry } from '@ledgerline/core'
import { encodeMessage } from '@ledgerline/protocol'
import type { AckMessage, EntriesMessage } from '@ledgerline/protocol'
import { signToken } from './auth.ts'
import { createFanoutTails, encodedEntry, encodeEntriesPage } from './fanout-tail.ts'
import type { LogStore } from './log-store.ts'
import { createRelay } from './relay.ts'
import type { Relay } from './relay.ts'
import { createSqliteStore } from './sqlite-store.ts'
import { openClient, sleep, waitFor } from './wire-client.test-helper.ts'
import type { WireClient } from './wire-client.test-helper.ts'

const SECRET = 'tail-test-secret-tail-test-secret'

const cleanups: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn()
})

describe('fanout tails', () => {
  it('splices a page byte for byte as encodeMessage makes it', () => {
    // Goal: the spliced frame is the same frame. Method: pages of 0, 1, 15, 16 and 300
    // entries (fixarray and array 16 headers), with and without cursors, live or not.
    for (const count of [0, 1, 15, 16, 300]) {
      const entries: StoredEntry[] = Array.from({ length: count }, (_, i) => sampleEntry(i))
      const cursors = count === 0 ? {} : { 2: 1_000 + count, 7: 70_000 }
      for (const live of [false, true]) {
        const spliced = encodeEntriesPage(9, entries.map(encodedEntry), cursors, live)
        const plain = encodeMessage({ type: 'entries', sub: 9, entries, cursors, live })
        expect(Buffer.from(spliced).equals(Buffer.from(plain))).toBe(true)
      }
    }
  })

  it('reads the log once per commit for all readers, and never serves what predates a commit', async () => {
    // Goal: the sharing itself, and invariants 2–4 of fanout-tail.ts. Method: a fake log
    // counts reads; ten readers at the head ask together after each commit; a reader behind
    // the tail gets undefined; a tail asked after a commit it has not read reads again.
    const rows: StoredEntry[] = []
    let reads = 0
    const fake = {
      partitions: 1,
      readPartition: async (tenant: string, _p: number, after: number, limit: number) => {
        reads++
        await sleep(1)
        const entries = rows.filter((e) => e.tenant === tenant && e.offset > after).slice(0, limit)
        const last = entries.at(-1)
        const head = rows.at(-1)?.offset ?? 0
        const throughOffset =
          entries.length >= limit && last !== undefined ? last.offset : Math.max(after, head)
        return { entries, throughOffset }
      },
    } as unknown as LogStore
    const tails = createFanoutTails(fake, 4)
    const commit = (tenant: string, n: number) => {
      for (let i = 0; i < n; i++) {
        const offset = rows.length + 1
        rows.push({ ...sampleEntry(offset), tenant, offset, partition: 0 })
      }
      tails.onCommit([0])
    }
    commit('acme', 2)
    const first = await Promise.all(Array.from({ length: 10 }, () => tails.read('acme', 0, 0, 100)))
    expect(reads).toBe(1)
    for (const r of first) expect(r?.entries.map((e) => e.entry.offset)).toEqual([1, 2])
    expect(first[0]?.atHead).toBe(true)
    // Served again without a read: no commit since.
    expect((await tails.read('acme', 0, 1, 100))?.entries.map((e) => e.entry.offset)).toEqual([2])
    expect(reads).toBe(1)
    commit('beta', 1)
    commit('acme', 3)
    const second = await Promise.all(Array.from({ length: 10 }, () => tails.read('acme', 0, 2, 2)))
    expect(reads).toBe(2)
    for (const r of second) {
      expect(r?.entries.map((e) => e.entry.offset)).toEqual([4, 5])
      expect(r?.throughOffset).toBe(5)
      expect(r?.atHead).toBe(false)
    }
    const rest = await tails.read('acme', 0, 5, 2)
    expect(rest?.entries.map((e) => e.entry.offset)).toEqual([6])
    expect(rest?.throughOffset).toBe(6)
    expect(rest?.atHead).toBe(true)
    // The tail keeps 4 entries (offsets 2, 4, 5, 6): a cursor before them reads the log.
    expect(await tails.read('acme', 0, 0, 100)).toBeUndefined()
    expect((await tails.read('acme', 0, 1, 100))?.entries).toHaveLength(4)
    // Another tenant's tail is its own, and sees only its entries.
    const beta = await tails.read('beta', 0, 0, 100)
    expect(beta?.entries.map((e) => e.entry.offset)).toEqual([3])
    expect(beta?.throughOffset).toBe(6)
  })

  it('forgets every tail on reset; a read begun before it answers undefined', async () => {
    // Goal: invariant 5 (a hub's mirror of another head office log reuses offsets). Method: a
    // fake log whose rows are replaced by another history at the same offsets; a read whose
    // fill is held across the reset answers undefined; a read after it serves the new rows.
    let rows: StoredEntry[] = []
    let hold: Promise<void> | undefined
    const fake = {
      partitions: 1,
      readPartition: async (tenant: string, _p: number, after: number, limit: number) => {
        const entries = rows.filter((e) => e.tenant === tenant && e.offset > after).slice(0, limit)
        const head = rows.at(-1)?.offset ?? 0
        await hold
        return { entries, throughOffset: Math.max(after, head) }
      },
    } as unknown as LogStore
    const tails = createFanoutTails(fake, 8)
    const history = (tag: string, n: number) =>
      Array.from({ length: n }, (_, i) => ({
        ...sampleEntry(i + 1),
        id: `${tag}-${i + 1}`,
        offset: i + 1,
        partition: 0,
      }))
    rows = history('old', 3)
    tails.onCommit([0])
    const ids = async (after: number) =>
      (await tails.read('acme', 0, after, 100))?.entries.map((e) => e.entry.id)
    expect(await ids(0)).toEqual(['old-1', 'old-2', 'old-3'])
    // A read whose fill is under way when the history is replaced.
    rows = history('old', 4)
    tails.onCommit([0])
    let release = () => {}
    hold = new Promise((resolve) => (release = resolve))
    const during = tails.read('acme', 0, 0, 100)
    await sleep(1)
    rows = history('new', 2)
    tails.reset()
    tails.onCommit([0])
    hold = undefined
    release()
    expect(await during).toBeUndefined()
    expect(await ids(0)).toEqual(['new-1', 'new-2'])
    expect(await ids(1)).toEqual(['new-2'])
  })

  it('serves every subscription exactly its entries, from a shared tail or the log', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'll-tail-'))
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
    const store = await createSqliteStore({ file: join(dir, 'log.sqlite'), partitions: 4 })
    cleanups.push(() => store.close())
    const options = {
      port: 0,
      store,
      auth: { secret: SECRET },
      logLevel: 'silent',
      limits: { tailEntriesMax: 4, pageEntriesMax: 3 },
    }
    const writes = await createRelay(options)
    cleanups.push(() => writes.close())
    const reads = await createRelay(options)
    cleanups.push(() => reads.close())

    const specs = [
      { tenant: 'acme', read: ['*'], scope: ['*'] },
      { tenant: 'acme', read: ['*'], scope: ['*'] },
      { tenant: 'acme', read: ['*'], scope: ['order/*'] },
      { tenant: 'acme', read: ['stock/*'], scope: ['stock/s1', 'stock/s3'] },
      { tenant: 'acme', read: ['order/*', 'stock/s2'], scope: ['order/o1', 'stock/s2'] },
      { tenant: 'beta', read: ['*'], scope: ['*'] },
      { tenant: 'beta', read: ['*'], scope: ['stock/*'] },
      { tenant: 'beta', read: ['order/*'], scope: ['order/*'] },
    ]
    // Half the subscriptions on the relay that writes, half on the one that only hears commits.
    const subs = await Promise.all(
      specs.map(async (spec, i) => {
        const client = await connect(i % 2 === 0 ? reads : writes, spec.tenant, spec.read, ['*'])
        client.send({ type: 'subscribe', sub: 1, scope: spec.scope, cursors: {}, credit: 64 })
        return { spec, client, pages: autoCredit(client) }
      }),
    )
    // The laggard: live first, then no credit while the writers run far past its cursor.
    const laggard = await connect(reads, 'acme', ['*'], ['*'])
    laggard.send({ type: 'subscribe', sub: 1, scope: ['*'], cursors: {}, credit: 1 })
    await laggard.next<EntriesMessage>((m) => m.type === 'entries' && m.live)

    const writers = await Promise.all(
      ['acme', 'beta', 'acme', 'beta', 'acme'].map((t) => connect(writes, t, ['*'], ['*'])),
    )
    await Promise.all(
      writers.map(async (w, wi) => {
        const tenant = wi % 2 === 0 ? 'acme' : 'beta'
        for (let round = 0; round < 12; round++) {
          const entries = Array.from({ length: 1 + ((round + wi) % 4) }, (_, k) => {
            const i = round * 7 + wi * 3 + k
            const entity = i % 2 === 0 ? `order/o${i % 3}` : `stock/s${i % 4}`
            return w.entry(
              entity,
              'moved',
              { i, big: 'y'.repeat(i % 5 === 0 ? 2_000 : 3) },
              {
                tenant,
              },
            )
          })
          w.send({ type: 'push', batch: round + 1, entries })
          const ack = await w.next<AckMessage>((m) => m.type === 'ack' && m.batch === round + 1)
          expect(ack.results.every((r) => r.status === 'appended')).toBe(true)
          if (round % 3 === 0) await sleep(5)
        }
      }),
    )

    const expected = async (tenant: string, read: string[], scope: string[]) => {
      const out: StoredEntry[] = []
      for (let p = 0; p < store.partitions; p++) {
        const page = await store.readPartition(tenant, p, 0, 10_000)
        out.push(
          ...page.entries.filter((e) => matchesAny(scope, e.entity) && matchesAny(read, e.entity)),
        )
      }
      return out
    }
    const byPosition = (a: StoredEntry, b: StoredEntry) =>
      a.partition - b.partition || a.offset - b.offset
    for (const { spec, client } of subs) {
      const want = await expected(spec.tenant, spec.read, spec.scope)
      expect(want.length).toBeGreaterThan(0)
      await waitFor(() => received(client).length >= want.length)
      await sleep(20)
      const got = received(client)
      expect(inOffsetOrder(got)).toBe(true)
      expect([...got].sort(byPosition)).toEqual(want)
    }

    // The laggard's cursor is far behind the 4-entry tail: it catches up from the log.
    const all = await expected('acme', ['*'], ['*'])
    expect(all.length).toBeGreaterThan(20)
    const laggardPages = autoCredit(laggard)
    laggard.send({ type: 'credit', sub: 1, pages: 1 })
    await waitFor(() => received(laggard).length >= all.length)
    await sleep(20)
    expect(inOffsetOrder(received(laggard))).toBe(true)
    expect([...received(laggard)].sort(byPosition)).toEqual(all)
    expect(laggardPages.count).toBeGreaterThan(1)

    // Live again after catching up: new commits reach it and the others through the tail.
    const w = writers[0] as WireClient
    w.send({ type: 'push', batch: 100, entries: [w.entry('order/o1', 'moved', { last: true })] })
    await w.next<AckMessage>((m) => m.type === 'ack' && m.batch === 100)
    await waitFor(() => received(laggard).length === all.length + 1)
    for (const { spec, client } of subs) {
      const want = await expected(spec.tenant, spec.read, spec.scope)
      await waitFor(() => received(client).length >= want.length)
      expect([...received(client)].sort(byPosition)).toEqual(want)
    }
    for (const { pages } of subs) expect(pages.count).toBeGreaterThan(0)
  })
})

function sampleEntry(i: number): StoredEntry {
  return {
    id: `e${i}`,
    tenant: 'acme',
    entity: `order/o${i % 3}`,
    kind: 'order.line',
    data: { qty: i, note: 'x'.repeat(i % 40), nested: { list: [i, -i, 1.5] } },
    intent: 'fact',
    clientId: 'c'.repeat(32),
    clientSeq: i + 1,
    hlc: `000000000000001:00000:${'c'.repeat(32)}`,
    occurredAt: 1_700_000_000_000 + i,
    version: i + 1,
    partition: 2,
    offset: 1_000 + i,
    committedAt: 1_700_000_000_500 + i,
  }
}

async function connect(
  relay: Relay,
  tenant: string,
  read: string[],
  write: string[],
): Promise<WireClient> {
  const client = await openClient(relay.url, { tenant })
  cleanups.push(() => client.close())
  const token = await signToken({ secret: SECRET, tenant, sub: 'tail-test', read, write })
  const welcome = await client.hello(token)
  expect(welcome.type).toBe('welcome')
  return client
}

/** Grants one page of credit back for every page received; counts the pages. */
function autoCredit(client: WireClient): { count: number } {
  const pages = { count: 0 }
  client.ws.on('message', () => {
    const last = client.received.at(-1)
    if (last?.type !== 'entries') return
    pages.count++
    client.send({ type: 'credit', sub: last.sub, pages: 1 })
  })
  return pages
}

function received(client: WireClient): StoredEntry[] {
  return client.received
    .filter((m): m is EntriesMessage => m.type === 'entries')
    .flatMap((m) => m.entries)
}

/** Per partition, offsets strictly increase in arrival order. */
function inOffsetOrder(entries: readonly StoredEntry[]): boolean {
  const last = new Map<number, number>()
  for (const e of entries) {
    if ((last.get(e.partition) ?? 0) >= e.offset) return false
    last.set(e.partition, e.offset)
  }
  return true
}
