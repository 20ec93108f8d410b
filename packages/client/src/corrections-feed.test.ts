// Goal: each correction is told to this tab's listeners once, whichever path brought it; a
// message from another tab reads the unseen ones and tells them oldest first; the list and the
// marking go to the client store.
// Method: an in-memory client store whose feed is filled by a page bringing corrections (an
// ack only names them).
import { describe, expect, it } from 'vitest'
import { CLIENT, correctionOf, entry, NOW, stored } from '../test-support/entries.ts'
import type { Correction } from './client-api.ts'
import type { FeedRecord } from './client-store.ts'
import { createCorrectionsFeed } from './corrections-feed.ts'
import { createMemoryClientStore } from './memory-client-store.ts'

async function storeWithFeed(count: number) {
  const store = createMemoryClientStore()
  await store.init(() => CLIENT, NOW)
  const { entries } = await store.append(
    (c, f) => Array.from({ length: count }, (_, i) => entry(c, f + i)),
    { entriesMax: 100, bytesMax: 1e9 },
    NOW,
    () => 10,
  )
  await store.prepareCursors('t1', 'k', () => true)
  const applied = await store.applyPages(
    [
      {
        entries: entries.flatMap((e, i) => [
          stored(e, i + 1, 0, 2 * i + 1),
          correctionOf(e, 0, 2 * i + 2),
        ]),
        cursors: { 0: 2 * entries.length },
      },
    ],
    'k',
  )
  return { store, records: applied.corrections }
}

describe('corrections feed', () => {
  it('tells each correction once, and reads what another tab stored, oldest first', async () => {
    const { store, records } = await storeWithFeed(3)
    const feed = createCorrectionsFeed(Promise.resolve(store))
    const told: Correction[] = []
    const stop = feed.onCorrection((c) => told.push(c))
    feed.tell(records.slice(0, 1))
    feed.tell(records.slice(0, 1))
    expect(told.map((c) => c.id)).toEqual([records[0]?.id])
    await feed.fetchNew() // another tab said corrections arrived
    expect(told.map((c) => c.of)).toEqual([1, 2, 3].map((s) => `${CLIENT}-${s}`))
    expect(told[0]).toEqual({
      id: records[0]?.id,
      of: `${CLIENT}-1`,
      entry: records[0]?.entry,
      unseen: true,
    })
    stop()
    feed.tell([{ ...(records[0] as FeedRecord), id: 'new' }])
    expect(told.length).toBe(3)
  })

  it('lists the stored feed newest first and marks it seen', async () => {
    const { store } = await storeWithFeed(2)
    const feed = createCorrectionsFeed(Promise.resolve(store))
    expect((await feed.list(10)).map((c) => [c.of, c.unseen])).toEqual([
      [`${CLIENT}-2`, true],
      [`${CLIENT}-1`, true],
    ])
    expect(await feed.markSeen()).toBe(2)
    expect((await feed.list(1)).map((c) => c.unseen)).toEqual([false])
    // A closed store: fetchNew gives up quietly, the list says why.
    store.close()
    await expect(feed.fetchNew()).resolves.toBeUndefined()
    await expect(feed.list(1)).rejects.toMatchObject({ kind: 'closed' })
  })
})
