// Goal: the write queue's promises: acks of one socket back to back make one write; pages of
// one subscription up to PAGES_PER_WRITE_MAX make one; a failed page abandons its socket and
// drops every later page of it; a page refused for space waits in memory and is retried after a
// backoff while acks go on; an ack refused for space is applied lean; the ledger index runs at
// once past INDEX_STAGED_KEYS_MAX, else INDEX_DELAY_MS after a live page.
// Method: a client store stand-in that records every write and fails on demand, a socket
// stand-in, a manual scheduler.
import { describe, expect, it } from 'vitest'
import { ackItem, appendedResult, CLIENT, entry } from '../test-support/entries.ts'
import { createManualScheduler, settle } from '../test-support/manual-scheduler.ts'
import type { AckApplied, ClientStore, PageApplied, PageIn } from './client-store.ts'
import { ClientError } from './errors.ts'
import {
  INDEX_DELAY_MS,
  INDEX_STAGED_KEYS_MAX,
  PAGES_PER_WRITE_MAX,
  RECONNECT_MS_MIN,
} from './limits.ts'
import type { WebSocketLike } from './transport.ts'
import type { PageWork } from './write-queue.ts'
import { createWriteQueue } from './write-queue.ts'

type Writes = Pick<ClientStore, 'applyAck' | 'applyPages' | 'indexPending'>

function setup(
  behave: {
    page?: (pages: readonly PageIn[]) => Promise<number>
    ack?: (lean: boolean) => Promise<void>
  } = {},
) {
  const log: string[] = []
  const store: Writes = {
    async applyAck(items, _keep, lean = false) {
      log.push(`ack${lean ? ' lean' : ''} ${items.length}`)
      await behave.ack?.(lean)
      return { entities: new Set(), changed: new Set(), gaps: 0, settled: new Map() } as AckApplied
    },
    async applyPages(pages) {
      log.push(`pages ${pages.map((p) => p.cursors[0]).join(',')}`)
      const stagedKeys = (await behave.page?.(pages)) ?? 0
      return {
        entities: new Set(),
        based: new Set(),
        corrections: [],
        stored: 0,
        own: 0,
        ownReceived: [],
        chunks: [],
        settled: new Map(),
        cursors: {},
        stagedKeys,
      } as PageApplied
    },
    async indexPending() {
      log.push('index')
      return true
    },
  }
  const scheduler = createManualScheduler()
  const ws = {} as WebSocketLike
  let current: WebSocketLike | undefined = ws
  const abandoned: WebSocketLike[] = []
  const failures: string[] = []
  let live = false
  const writes = createWriteQueue({
    clientStore: store,
    scheduler,
    current: () => current,
    inScope: () => true,
    live: () => live,
    stopped: () => false,
    acked: () => log.push('acked'),
    paged: (_ws, run) => log.push(`paged ${run.length}`),
    failed: (m) => failures.push(m),
    abandon: (s) => {
      abandoned.push(s)
      current = undefined
    },
  })
  const page = (n: number, sub = 1, on = ws): PageWork => ({
    _tag: 'page',
    ws: on,
    sub,
    scopeKey: 'k',
    page: { entries: [], cursors: { 0: n } },
    live: false,
  })
  const ack = (seq: number, on = ws) => ({
    _tag: 'ack' as const,
    ws: on,
    items: [ackItem(entry(CLIENT, seq), appendedResult(entry(CLIENT, seq), 0, seq))],
  })
  return {
    writes,
    log,
    scheduler,
    ws,
    page,
    ack,
    abandoned,
    failures,
    setLive: (v: boolean) => (live = v),
  }
}

describe('write queue', () => {
  it('makes one write of acks back to back, and of pages back to back up to the bound', async () => {
    const t = setup()
    t.writes.enqueue(t.ack(1)) // taken at once: the loop starts with it
    for (let s = 2; s <= 4; s++) t.writes.enqueue(t.ack(s))
    for (let n = 1; n <= PAGES_PER_WRITE_MAX + 2; n++) t.writes.enqueue(t.page(n))
    t.writes.enqueue(t.page(100, 2)) // another subscription: its own write
    await t.writes.idle()
    const pages = Array.from({ length: PAGES_PER_WRITE_MAX }, (_, i) => i + 1).join(',')
    expect(t.log).toEqual([
      'ack 1',
      'acked',
      'ack 3',
      'acked',
      `pages ${pages}`,
      `paged ${PAGES_PER_WRITE_MAX}`,
      `pages ${PAGES_PER_WRITE_MAX + 1},${PAGES_PER_WRITE_MAX + 2}`,
      'paged 2',
      'pages 100',
      'paged 1',
    ])
  })

  it('abandons the socket of a failed page and drops every later page of it', async () => {
    const t = setup({
      page: async (pages) => {
        if (pages[0]?.cursors[0] === 1) throw new Error('transient failure')
        return 0
      },
    })
    t.writes.enqueue(t.page(1))
    t.writes.enqueue(t.ack(1))
    t.writes.enqueue(t.page(2))
    await t.writes.idle()
    expect(t.abandoned).toEqual([t.ws])
    expect(t.failures).toEqual(['transient failure'])
    // The ack still applies (its outbox records are real); the later page is not stored.
    expect(t.log).toEqual(['pages 1', 'ack 1', 'acked'])
  })

  it('holds pages refused for space and retries them after a backoff, acks going on', async () => {
    let full = true
    const t = setup({
      page: async () => {
        if (full) throw new ClientError('storage_full', 'full')
        return 0
      },
    })
    t.writes.enqueue(t.page(1))
    await t.writes.idle()
    t.writes.enqueue(t.page(2)) // behind the held one: held too, in order
    t.writes.enqueue(t.ack(1))
    await t.writes.idle()
    expect(t.log).toEqual(['pages 1', 'ack 1', 'acked'])
    expect(t.abandoned).toEqual([])
    full = false
    await t.scheduler.advance(RECONNECT_MS_MIN)
    await t.writes.idle()
    expect(t.log.slice(3)).toEqual(['pages 1,2', 'paged 2'])
  })

  it('applies an ack refused for space again, lean', async () => {
    const t = setup({
      ack: async (lean) => {
        if (!lean) throw new ClientError('storage_full', 'full')
      },
    })
    t.writes.enqueue(t.ack(1))
    await t.writes.idle()
    expect(t.log).toEqual(['ack 1', 'ack lean 1', 'acked'])
    expect(t.failures).toEqual(['storage full: acks applied without keeping outcomes'])
  })

  it('indexes at once past INDEX_STAGED_KEYS_MAX, else after INDEX_DELAY_MS when live', async () => {
    let staged = INDEX_STAGED_KEYS_MAX
    const t = setup({ page: async () => staged })
    t.writes.enqueue(t.page(1))
    await t.writes.idle()
    expect(t.log).toEqual(['pages 1', 'paged 1', 'index'])
    staged = 5
    t.writes.enqueue(t.page(2))
    await t.writes.idle()
    await t.scheduler.advance(INDEX_DELAY_MS)
    expect(t.log.at(-1)).toBe('paged 1') // not live: no index yet
    t.setLive(true)
    t.writes.enqueue(t.page(3))
    await t.writes.idle()
    await t.scheduler.advance(INDEX_DELAY_MS - 1)
    expect(t.log.at(-1)).toBe('paged 1')
    await t.scheduler.advance(1)
    await settle()
    expect(t.log.at(-1)).toBe('index')
  })
})
