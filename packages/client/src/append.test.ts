// Goal: the append path refuses what it must before anything is written, with the documented
// `ClientError` kind: data over ENTRY_DATA_BYTES_MAX is `too_large` (issue 13, case 7), and the
// outbox stays as it was.
// Method: a client with no relay reachable (fake-indexeddb), appends of data just under and
// just over the limit, then the status counters and the outbox read back.
import 'fake-indexeddb/auto'
import { afterEach, describe, expect, it } from 'vitest'
import { ENTRY_DATA_BYTES_MAX } from '@ledgerline/protocol'
import { makeClient } from '../test-support/setup.ts'
import type { Client } from './client.ts'
import { ClientError } from './errors.ts'

const TOKEN = 'x.eyJ0ZW5hbnQiOiJ0MSJ9.y' // payload {"tenant":"t1"}; nothing verifies it offline
const clients: Client[] = []
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close()
})

describe('append', () => {
  it('refuses data over ENTRY_DATA_BYTES_MAX with too_large and writes nothing', async () => {
    const c = makeClient({ url: 'ws://127.0.0.1:9/sync', token: TOKEN })
    clients.push(c)
    await c.append('order/big', 'order.line', { note: 'fits' })
    const over = { note: 'x'.repeat(ENTRY_DATA_BYTES_MAX + 1) }
    const error = await c.append('order/big', 'order.line', over).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(ClientError)
    expect((error as ClientError).kind).toBe('too_large')
    const many = await c
      .appendMany([
        { entity: 'order/big', kind: 'order.line', data: { note: 'fits' } },
        { entity: 'order/big', kind: 'order.line', data: over },
      ])
      .catch((e: unknown) => e)
    expect((many as ClientError).kind).toBe('too_large')
    // Many small strings over the limit together: the data as a whole is measured.
    const parts = { parts: Array.from({ length: 70 }, () => 'y'.repeat(1_000)) }
    const spread = await c.append('order/big', 'order.line', parts).catch((e: unknown) => e)
    expect((spread as ClientError).kind).toBe('too_large')
    expect(c.status().outboxEntries).toBe(1)
    const items = await c.entries('order/big')
    expect(items.map((i) => i.entry.clientSeq)).toEqual([1])
    // Just under the limit is fine: the bound is on the data, not on the whole entry.
    const under = { note: 'x'.repeat(ENTRY_DATA_BYTES_MAX - 16) }
    expect((await c.append('order/big', 'order.line', under)).clientSeq).toBe(2)
  })

  it('refuses a malformed kind or corrects id with invalid, not storage, and writes nothing', async () => {
    // Goal: what only the entry's full validation (inside the append write) catches is still
    // bad input of the app, with the kind the README documents.
    const c = makeClient({ url: 'ws://127.0.0.1:9/sync', token: TOKEN })
    clients.push(c)
    for (const [kind, options] of [
      ['NOT A KIND', {}],
      ['order.line', { corrects: 'not an id' }],
    ] as const) {
      const error = await c.append('order/bad', kind, {}, options).catch((e: unknown) => e)
      expect(error).toBeInstanceOf(ClientError)
      expect((error as ClientError).kind).toBe('invalid')
      expect((error as ClientError).message).toMatch(kind === 'order.line' ? /corrects/ : /kind/)
    }
    expect(c.status().outboxEntries).toBe(0)
    expect(await c.entries('order/bad')).toEqual([])
  })
})
