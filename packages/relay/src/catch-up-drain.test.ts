// Goal: the relay's own catch-up never trips its slow-consumer cap. A reader on a slow link
// (here: a socket that reads nothing for a while) that grants the usual credit window is sent
// catch-up pages only while its socket has room for one more page under `bufferedBytesMax`, so
// it catches up and goes live without being cut (on 114e1f4 it was cut 4408 `slow_consumer` by
// pages the relay chose to send: 16 pages of up to `pageBytesMax` exceed the 4 MiB cap, so a
// wiped register behind a slow store link was cut on every catch-up).
// Method: a relay on SQLite with its default limits; a log of PAGES pages of large entries
// (about 20 MB); a reader says hello, pauses its socket (the kernel buffers fill, then the
// relay's queue), subscribes from cursor 0 with a credit window of CREDIT pages and gives a page
// back per page read once it resumes. It must receive every entry once and a live page, never
// an error; and the relay still cuts a live subscriber that stops reading (bad-input.test.ts).
import { afterEach, describe, expect, it } from 'vitest'
import type { EntriesMessage } from '@ledgerline/protocol'
import { pushAcked, startEdgeRelay, token } from './edges.test-helper.ts'
import { openClient, sleep, waitFor } from './wire-client.test-helper.ts'

const BLOB_BYTES = 40_000
const ENTRIES_PER_PUSH = 20
const PAGES = 32
const CREDIT = 16
const PAUSED_MS = 1_500

const cleanups: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

describe('catch-up and the slow-consumer cap', () => {
  it('sends a paused reader catch-up pages only while they fit under the cap', async () => {
    const relay = await startEdgeRelay('sqlite', { schema: null })
    cleanups.push(() => relay.close())
    const writer = await openClient(relay.url)
    cleanups.push(() => writer.close())
    expect((await writer.hello(await token({ sub: 'writer' }))).type).toBe('welcome')
    const blob = 'x'.repeat(BLOB_BYTES)
    for (let b = 1; b <= PAGES; b++) {
      const entries = Array.from({ length: ENTRIES_PER_PUSH }, (_, i) =>
        writer.entry(`doc/d${b}-${i}`, 'doc.put', { blob }),
      )
      await pushAcked(writer, b, entries)
    }

    const reader = await openClient(relay.url)
    cleanups.push(() => reader.ws.terminate())
    expect((await reader.hello(await token({ sub: 'reader' }))).type).toBe('welcome')
    const socket = (reader.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket
    socket.pause()
    reader.send({ type: 'subscribe', sub: 1, scope: ['*'], cursors: {}, credit: CREDIT })
    await sleep(PAUSED_MS)
    socket.resume()

    const ids = new Set<string>()
    let live = false
    for (;;) {
      const m = await reader.next((x) => x.type === 'entries' || x.type === 'error', 20_000)
      if (m.type === 'error') throw new Error(`the reader got ${JSON.stringify(m)}`)
      const page = m as EntriesMessage
      for (const e of page.entries) ids.add(e.id)
      if (page.live) {
        live = true
        break
      }
      reader.send({ type: 'credit', sub: 1, pages: 1 })
    }
    expect(live).toBe(true)
    expect(ids.size).toBe(PAGES * ENTRIES_PER_PUSH)
    // Still open: a ping is answered.
    reader.send({ type: 'ping', t: 7 })
    await waitFor(() => reader.received.some((m) => m.type === 'pong'))
    expect(reader.received.filter((m) => m.type === 'error')).toEqual([])
  })
})
