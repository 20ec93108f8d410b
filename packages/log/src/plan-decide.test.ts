// Goal: the planner's per-entry decision is core's decide(): a plain log's shortcut
// (decidePlain) gives the very outcome decide(undefined, …) gives for a validated entry, and a
// correction is sized like an entry. Method: one validated entry varied per branch (clock ahead,
// corrects checked, request expect met and missed, plain fact), each decided both ways and
// compared; a correction just under and just over ENTRY_DATA_BYTES_MAX.
import { describe, expect, it } from 'vitest'
import { decide, validateEntry } from '@ledgerline/core'
import type { CorrectsCheck, Entry } from '@ledgerline/core'
import { ENTRY_DATA_BYTES_MAX, entryDataBytes } from '@ledgerline/protocol'
import { checkCorrectionSize, decideEntry, decidePlain } from './plan-decide.ts'
import type { PlanContext } from './plan-types.ts'

const CID = '0123456789abcdef0123456789abcdef'
const NOW = 1_732_700_000_000

function makeEntry(over: Partial<Entry> = {}): Entry {
  return validateEntry({
    id: `${CID}-7`,
    tenant: 'acme',
    entity: 'stock/s7:espresso-1kg',
    kind: 'stock.moved',
    data: { qty: -3 },
    intent: 'fact',
    clientId: CID,
    clientSeq: 7,
    hlc: `001732700000000:00000:${CID}`,
    occurredAt: NOW - 5000,
    ...over,
  })
}

const refuseCorrects = (): CorrectsCheck => ({ _tag: 'refuse', reason: 'not an entry of the log' })
const okCorrects = (): CorrectsCheck => ({ _tag: 'ok' })

describe('decidePlain', () => {
  const cases: [string, Entry, (id: string) => CorrectsCheck][] = [
    ['a plain fact', makeEntry(), okCorrects],
    ['a clock far ahead', makeEntry({ occurredAt: NOW + 86_400_000 }), okCorrects],
    ['a corrects the log refuses', makeEntry({ corrects: `${CID}-1` }), refuseCorrects],
    ['a corrects the log accepts', makeEntry({ corrects: `${CID}-1` }), okCorrects],
    ['a request whose expect is met', makeEntry({ intent: 'request', expect: 4 }), okCorrects],
    ['a request whose expect is missed', makeEntry({ intent: 'request', expect: 3 }), okCorrects],
  ]
  for (const [name, entry, checkCorrects] of cases) {
    it(`decides ${name} as decide(undefined, …) does`, () => {
      const plain = decidePlain(4, entry, NOW, checkCorrects)
      const full = decide(undefined, { state: null, version: 4 }, entry, NOW, { checkCorrects })
      expect(plain).toEqual(full)
    })
  }

  it('refuses a missed expect with conflict and the version', () => {
    const decision = decidePlain(4, makeEntry({ intent: 'request', expect: 3 }), NOW, okCorrects)
    expect(decision).toEqual({
      _tag: 'refuse',
      code: 'conflict',
      reason: 'expected version 3, entity is at 4',
    })
  })
})

describe('decideEntry', () => {
  it('takes the plain path without a schema and never asks for another state', () => {
    const context: PlanContext = {
      schema: undefined,
      partitions: 4,
      committedAt: NOW,
      lookups: {
        client: () => undefined,
        previous: () => undefined,
        originals: () => undefined,
        entityHead: () => undefined,
        partitionHead: () => undefined,
      },
    }
    let asked = 0
    const decision = decideEntry(context, { version: 2, offset: 9, state: null }, makeEntry(), {
      stateOf: () => {
        asked += 1
        return null
      },
      checkCorrects: okCorrects,
    })
    expect(decision._tag).toBe('append')
    expect(asked).toBe(0)
  })
})

describe('checkCorrectionSize', () => {
  it('lets a correction that fits an entry pass and names the limit for one that does not', () => {
    const fits = makeEntry({ data: { note: 'x'.repeat(ENTRY_DATA_BYTES_MAX - 64) } })
    expect(entryDataBytes(fits.data)).toBeLessThanOrEqual(ENTRY_DATA_BYTES_MAX)
    expect(checkCorrectionSize(fits)).toBe(true)
    const over = { ...fits, data: { note: 'x'.repeat(ENTRY_DATA_BYTES_MAX) } }
    const said = checkCorrectionSize(over)
    expect(said).toMatch(/^stock\.moved data is \d+ bytes encoded, over ENTRY_DATA_BYTES_MAX/)
  })
})
