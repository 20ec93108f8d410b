// Goal: a connection's awareness budget (`yjs-connection.ts` invariant 5): the states it would
// hold after an update are counted in encoded bytes, a removed state counts 0, and an update
// that would pass the bound is refused whole. Method: real awareness updates of two documents;
// the wire behaviour (the 4413 close) is covered by `yjs-endpoint.test.ts`.
import { describe, expect, it } from 'vitest'
import * as awarenessProtocol from 'y-protocols/awareness'
import * as Y from 'yjs'
import { awarenessAfter } from './yjs-connection.ts'

function awarenessOf(state: Record<string, unknown> | null) {
  const awareness = new awarenessProtocol.Awareness(new Y.Doc())
  awareness.setLocalState(state)
  return awareness
}

describe('awarenessAfter', () => {
  it('counts each client state in encoded bytes and a removed one as 0', () => {
    const a = awarenessOf({ name: 'till 1' })
    const b = awarenessOf({ name: 'till 2', cursor: 42 })
    const ua = awarenessProtocol.encodeAwarenessUpdate(a, [a.clientID])
    const ub = awarenessProtocol.encodeAwarenessUpdate(b, [b.clientID])
    const one = awarenessAfter(new Map(), ua, 1_000)
    const aBytes = JSON.stringify({ name: 'till 1' }).length + 1 // varint length + JSON
    expect(one).toEqual(new Map([[a.clientID, aBytes]]))
    const two = awarenessAfter(one as Map<number, number>, ub, 1_000)
    expect(two?.get(a.clientID)).toBe(aBytes)
    expect(two?.get(b.clientID)).toBeGreaterThan(aBytes)
    a.setLocalState(null)
    const gone = awarenessAfter(
      two as Map<number, number>,
      awarenessProtocol.encodeAwarenessUpdate(a, [a.clientID]),
      1_000,
    )
    expect(gone?.get(a.clientID)).toBe(0)
  })

  it('refuses an update whose states would pass the bound, leaving the held map as it was', () => {
    const a = awarenessOf({ note: 'x'.repeat(100) })
    const update = awarenessProtocol.encodeAwarenessUpdate(a, [a.clientID])
    const held = new Map([[7, 50]])
    expect(awarenessAfter(held, update, 140)).toBeUndefined()
    expect(held).toEqual(new Map([[7, 50]]))
    expect(awarenessAfter(held, update, 200)?.get(a.clientID)).toBeGreaterThan(100)
  })
})
