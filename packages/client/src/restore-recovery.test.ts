// Goal: restore recovery's choices on their own: a clean session lifts, a recovering one or a
// conflict moves the outbox to an id derived from (device secret, old id, high-water mark), the
// same every time (so the same restore done twice dedupes), never one this database used, and a
// random one after REISSUE_HOPS_MAX derived moves in a row (recovery always ends).
// Method: a client store stand-in that records the moves asked for.
import { describe, expect, it } from 'vitest'
import { CLIENT } from '../test-support/entries.ts'
import type { ClientStore } from './client-store.ts'
import { REISSUE_HOPS_MAX } from './limits.ts'
import type { RecoverySession } from './restore-recovery.ts'
import { createRecovery, deriveClientId } from './restore-recovery.ts'

const SECRET = 'de'.repeat(16)

function setup() {
  const moves: [string, string][] = []
  const clientStore: Pick<ClientStore, 'reissue'> = {
    async reissue(from, to) {
      moves.push([from, to])
      return new Map([[`${from}-1`, `${to}-1`]])
    },
  }
  let random = 0
  const recovery = createRecovery({
    clientStore,
    randomClientId: () => String(++random).padStart(32, 'f'),
  })
  return { recovery, moves }
}

const session = (patch: Partial<RecoverySession> = {}): RecoverySession => ({
  from: CLIENT,
  high: 3,
  deviceSecret: SECRET,
  clientIds: [CLIENT],
  recovering: false,
  ...patch,
})

describe('restore recovery', () => {
  it('derives the same 128-bit clientId from the same secret, id and high-water mark', () => {
    const id = deriveClientId(SECRET, CLIENT, 3)
    expect(id).toMatch(/^[0-9a-f]{32}$/)
    expect(deriveClientId(SECRET, CLIENT, 3)).toBe(id)
    expect(deriveClientId(SECRET, CLIENT, 4)).not.toBe(id)
    expect(deriveClientId('ff'.repeat(16), CLIENT, 3)).not.toBe(id)
  })

  it('lifts a clean session, and moves a recovering one or one that met a conflict', async () => {
    const t = setup()
    expect(await t.recovery.settle(session(), 0)).toEqual({ _tag: 'lift' })
    const moved = await t.recovery.settle(session({ recovering: true }), 0)
    expect(moved).toMatchObject({ _tag: 'moved', to: deriveClientId(SECRET, CLIENT, 3) })
    await t.recovery.settle(session({ high: 5 }), 2)
    expect(t.moves).toEqual([
      [CLIENT, deriveClientId(SECRET, CLIENT, 3)],
      [CLIENT, deriveClientId(SECRET, CLIENT, 5)],
    ])
  })

  it('takes a random id for a derived one this database used, and after REISSUE_HOPS_MAX hops', async () => {
    const t = setup()
    const used = deriveClientId(SECRET, CLIENT, 3)
    const cycle = await t.recovery.settle(
      session({ clientIds: [CLIENT, used], recovering: true }),
      0,
    )
    expect(cycle).toMatchObject({ _tag: 'moved', to: '1'.padStart(32, 'f') })
    const u = setup()
    let from = CLIENT
    const tos: string[] = []
    for (let hop = 0; hop <= REISSUE_HOPS_MAX; hop++) {
      const settled = await u.recovery.settle(session({ from, recovering: true }), 1)
      if (settled._tag !== 'moved') throw new Error('expected a move')
      tos.push(settled.to)
      from = settled.to
    }
    expect(
      tos
        .slice(0, REISSUE_HOPS_MAX)
        .every(
          (to, i) => to === deriveClientId(SECRET, i === 0 ? CLIENT : (tos[i - 1] as string), 3),
        ),
    ).toBe(true)
    expect(tos.at(-1)).toBe('1'.padStart(32, 'f'))
    // A clean session in between starts the count over.
    await u.recovery.settle(session(), 0)
    const again = await u.recovery.settle(session({ recovering: true }), 0)
    expect(again).toMatchObject({ to: deriveClientId(SECRET, CLIENT, 3) })
  })
})
