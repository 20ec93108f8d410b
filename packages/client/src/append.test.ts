// Goal: the append path refuses what it must before anything is written, with the documented
// `ClientError` kind (data over ENTRY_DATA_BYTES_MAX is `too_large`, issue 13 case 7; an entry
// core refuses is `invalid`), builds entries with gap-free clientSeq, increasing stamps and the
// known tenant, and writes a call's drafts in one write.
// Method: `createAppender` over an in-memory client store; and a whole client with no relay
// reachable (fake-indexeddb), its status counters and outbox read back.
import 'fake-indexeddb/auto'
import { afterEach, describe, expect, it } from 'vitest'
import { defineEntity, defineSchema } from '@ledgerline/core'
import { ENTRY_DATA_BYTES_MAX } from '@ledgerline/protocol'
import { CLIENT, NOW, OTHER } from '../test-support/entries.ts'
import { schema } from '../test-support/schema.ts'
import { makeClient } from '../test-support/setup.ts'
import { createAppender, entryBytes } from './append.ts'
import type { Client } from './client.ts'
import { ClientError } from './errors.ts'
import { APPEND_MANY_ENTRIES_MAX } from './limits.ts'
import { createMemoryClientStore } from './memory-client-store.ts'

const TOKEN = 'x.eyJ0ZW5hbnQiOiJ0MSJ9.y' // payload {"tenant":"t1"}; nothing verifies it offline
const clients: Client[] = []
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close()
})

async function setup(tenant: string | null = 't1') {
  const store = createMemoryClientStore()
  await store.init(() => CLIENT, NOW)
  let t = NOW
  const strict = defineSchema(
    ...schema.types.values(),
    defineEntity({
      type: 'till',
      initial: {},
      reduce: (s) => s,
      validate: (e) => e.kind === 'till.opened' || 'only till.opened',
    }),
  )
  return {
    store,
    appender: createAppender({
      clientStore: Promise.resolve(store),
      typeOf: (entity) => strict.typeOf(entity),
      tenant: async () => tenant ?? undefined,
      now: () => t,
    }),
    tick: (ms: number) => (t += ms),
  }
}

const kindOf = (p: Promise<unknown>) =>
  p.then(
    () => 'resolved',
    (e: ClientError) => e.kind,
  )

describe('createAppender', () => {
  it('builds entries with gap-free clientSeq, increasing stamps and the tenant, in one write', async () => {
    const { store, appender, tick } = await setup()
    const first = await appender.append([
      { entity: 'order/a', kind: 'order.line', data: { i: 1 } },
      { entity: 'card/g', kind: 'card.redeemed', data: {}, intent: 'request', expect: 2 },
    ])
    tick(-5_000) // the wall clock jumps back: stamps still increase
    const second = await appender.append([{ entity: 'order/a', kind: 'order.line', data: {} }])
    const entries = [...first.appended.entries, ...second.appended.entries]
    expect(entries.map((e) => [e.id, e.tenant, e.intent])).toEqual([
      [`${CLIENT}-1`, 't1', 'fact'],
      [`${CLIENT}-2`, 't1', 'request'],
      [`${CLIENT}-3`, 't1', 'fact'],
    ])
    expect(entries[1]?.expect).toBe(2)
    const stamps = entries.map((e) => e.hlc)
    expect(stamps).toEqual(entries.map((e) => e.hlc).sort())
    expect(new Set(entries.map((e) => e.hlc)).size).toBe(3)
    expect(second.at).toBe(NOW - 5_000)
    expect(first.appended.bytes).toBe(entries.slice(0, 2).reduce((n, e) => n + entryBytes(e), 0))
    expect((await store.counters()).outboxEntries).toBe(3)
  })

  it('refuses bad drafts with typed errors before anything is written', async () => {
    const { store, appender } = await setup()
    const draft = { entity: 'order/a', kind: 'order.line', data: {} }
    expect(await kindOf(appender.append([{ ...draft, entity: 'no-slash' }]))).toBe('invalid')
    expect(await kindOf(appender.append([{ ...draft, entity: 'ghost/a' }]))).toBe('unknown_type')
    expect(await kindOf(appender.append([{ ...draft, data: { f: () => 1 } as never }]))).toBe(
      'invalid',
    )
    expect(await kindOf(appender.append([{ ...draft, expect: 1 }]))).toBe('invalid')
    expect(
      await kindOf(
        appender.append(Array.from({ length: APPEND_MANY_ENTRIES_MAX + 1 }, () => draft)),
      ),
    ).toBe('invalid')
    expect(
      await kindOf(appender.append([{ entity: 'till/1', kind: 'till.closed', data: {} }])),
    ).toBe('invalid')
    expect(await kindOf(appender.append([draft, { ...draft, kind: 'BAD' }]))).toBe('invalid')
    expect((await store.counters()).seqLast).toBe(0)
    const none = await setup(null)
    expect(await kindOf(none.appender.append([draft]))).toBe('invalid')
  })

  it('starts a new clock for a new clientId after a reissue', async () => {
    const { store, appender } = await setup()
    await appender.append([{ entity: 'order/a', kind: 'order.line', data: {} }])
    await store.reissue(CLIENT, OTHER)
    appender.resetClock()
    const { appended } = await appender.append([
      { entity: 'order/a', kind: 'order.line', data: {} },
    ])
    expect(appended.entries[0]?.id).toBe(`${OTHER}-2`)
    expect(appended.entries[0]?.hlc.endsWith(`:${OTHER}`)).toBe(true)
  })

  it('names the current id of an own entry the restore recovery moved, in corrects', async () => {
    // Found by the product simulation (log restores, seed 4): the app voided a sale by the id
    // append gave it; the sale had moved to a new clientId since, so the void named an id the
    // log did not hold and was refused `invalid` (a fact lost).
    const { appender, store } = await setup()
    const { appended } = await appender.append([
      { entity: 'order/a', kind: 'order.line', data: {} },
    ])
    const sale = appended.entries[0]?.id as string
    await store.reissue(CLIENT, OTHER)
    appender.resetClock()
    const voided = await appender.append([
      { entity: 'order/a', kind: 'order.voided', data: {}, corrects: sale },
      // Not an own moved entry: named as the app said.
      { entity: 'order/a', kind: 'order.voided', data: {}, corrects: `${CLIENT}-9` },
    ])
    expect(voided.appended.entries.map((e) => e.corrects)).toEqual([`${OTHER}-1`, `${CLIENT}-9`])
  })
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
