// Goal: issue 12 case 7 — a fact the relay cannot decide yet (the app shipped a new entity type
// before the relay's schema knew it: a normal rollout order) is not refused for good: it is
// deferred, held by the client with a visible status while the till's later entries keep
// flowing, and appended once the relay restarts with a schema that knows the type.
// Method: the real client and the real relay on SQLite and PostgreSQL. The app's schema has a
// `loyalty` type; the relay starts with the test schema without it, then restarts on the same
// log with `loyalty` added. On 3a8bfae the loyalty entry is refused `unknown_type`, the refusal
// is recorded, and the upgraded relay answers the resend with the old refusal.
import 'fake-indexeddb/auto'
import { describe, expect, it } from 'vitest'
import { defineEntity, defineSchema } from '@ledgerline/core'
import { heldOf } from '../test-support/edge-api.ts'
import { LOG_KINDS, useEdgeServers } from '../test-support/edge-relay.ts'
import { card, order, stock } from '../test-support/schema.ts'
import { eventually } from '../test-support/setup.ts'

const loyalty = defineEntity({
  type: 'loyalty',
  initial: { points: 0 },
  reduce: (s: { points: number }, e) =>
    e.kind === 'loyalty.earned' ? { points: s.points + Number(e.data.points) } : s,
})
const appSchema = defineSchema(stock, card, order, loyalty)
const relaySchemaBefore = defineSchema(stock, card, order)

const startEdgeServer = useEdgeServers()

describe.each(LOG_KINDS)('issue 12 case 7: entries the relay cannot decide yet (%s)', (kind) => {
  it('holds an unknown_type entry (deferred), lets later entries through, appends it after the relay learns the type', async () => {
    const server = await startEdgeServer(kind, { schema: relaySchemaBefore })
    const till = server.open({ schema: appSchema })
    const points = await till.append('loyalty/c7', 'loyalty.earned', { points: 5 })
    const lines = []
    for (let i = 0; i < 3; i++) lines.push(await till.append('order/o7', 'order.line', { i }))
    // Later entries of the same client are not blocked behind the held one.
    for (const line of lines) {
      expect(await till.outcome(line.id, { waitMs: 10_000 })).toMatchObject({ _tag: 'appended' })
    }
    // Held in the outbox: no decision yet (3a8bfae's name for this outcome was `pending`; the
    // client refactor renamed it `outbox`).
    expect(await till.outcome(points.id)).toEqual({ _tag: 'outbox', stage: 'device' })
    await eventually(() => heldOf(till.status()).held === 1, 10_000, 'status().held === 1')
    expect(heldOf(till.status()).heldReasons).toEqual([{ code: 'unknown_type', count: 1 }])
    // The outbox counters are refreshed COUNTERS_DELAY_MS after an ack: only the held entry stays.
    await eventually(() => till.status().outboxEntries === 1, 5_000, 'outboxEntries === 1')

    // The relay's schema ships: same log, the type now known. The held entry is resent on the
    // reconnect and decided from scratch.
    await server.start(server.place, { schema: appSchema })
    expect(await till.outcome(points.id, { waitMs: 20_000 })).toMatchObject({ _tag: 'appended' })
    expect(await till.synced({ timeoutMs: 20_000 })).toEqual({ _tag: 'synced' })
    expect((await server.entries('loyalty/c7')).map((e) => e.id)).toEqual([points.id])
    expect((await server.entries('order/o7')).map((e) => e.id)).toEqual(lines.map((e) => e.id))
    expect(heldOf(till.status()).held).toBe(0)
    expect((await till.load('loyalty/c7')).confirmed).toEqual({ points: 5 })
  }, 60_000)
})
