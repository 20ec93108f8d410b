// Goal: issue 13 case 9 (the client's half) — a relay configured with a `pushEntriesMax` below the
// client's own batch size does not stall the till: the relay advertises its limits in `welcome`
// and the client sizes its batches from them, so the outbox drains (on 3a8bfae every push is
// `too_large`, the socket closes, and the client waits RECONNECT_MS_MAX to send the same batch).
// Method: the real client with a wire spy and the real relay (SQLite) with `pushEntriesMax: 10`;
// 100 sales made offline, then online.
import 'fake-indexeddb/auto'
import { describe, expect, it } from 'vitest'
import { useEdgeServers } from '../test-support/edge-relay.ts'
import { createWireSpy } from '../test-support/wire-spy.ts'

const RELAY_PUSH_ENTRIES_MAX = 10

const startEdgeServer = useEdgeServers()

describe('issue 13 case 9: batches sized from the limits in welcome', () => {
  it('drains 100 offline sales through a relay that takes at most 10 entries per push', async () => {
    const server = await startEdgeServer('sqlite', {
      limits: { pushEntriesMax: RELAY_PUSH_ENTRIES_MAX },
    })
    server.proxy.setOnline(false)
    const spy = createWireSpy()
    const till = server.open({ WebSocket: spy.WebSocket })
    const sold = await till.appendMany(
      Array.from({ length: 100 }, (_, i) => ({
        entity: 'order/o9',
        kind: 'order.line',
        data: { i },
      })),
    )
    server.proxy.setOnline(true)
    expect(await till.synced({ timeoutMs: 20_000 })).toEqual({ _tag: 'synced' })
    expect((await server.entries('order/o9')).map((e) => e.id)).toEqual(sold.map((e) => e.id))
    expect(spy.errorKinds()).toEqual([])
    const pushed = spy.sent.filter((f) => f.type === 'push')
    for (const push of pushed) {
      expect((push.message.entries as unknown[]).length).toBeLessThanOrEqual(RELAY_PUSH_ENTRIES_MAX)
    }
  }, 40_000)
})
