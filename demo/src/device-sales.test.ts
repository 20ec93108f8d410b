// Goal: the sign-in learns which other registers of this device still hold unsent sales, and
// forgets a register once its outbox is empty. Method: an in-memory Storage.
import { describe, expect, it } from 'vitest'
import { otherRegistersUnsent, rememberUnsent } from './device-sales.ts'

function memoryStorage(): Storage {
  const m = new Map<string, string>()
  return {
    get length() {
      return m.size
    },
    clear: () => m.clear(),
    getItem: (k) => m.get(k) ?? null,
    key: (i) => [...m.keys()][i] ?? null,
    removeItem: (k) => void m.delete(k),
    setItem: (k, v) => void m.set(k, v),
  }
}

describe('device sales', () => {
  it('warns about another register with unsent sales, not about the chosen one', () => {
    const storage = memoryStorage()
    const r1 = { store: 's1', register: 'r1' }
    const r2 = { store: 's1', register: 'r2' }
    rememberUnsent(r1, { sales: 2, amount: 640, outbox: 12, at: 5 }, storage)
    expect(otherRegistersUnsent(r2, storage)).toEqual([
      { store: 's1', register: 'r1', sales: 2, amount: 640, outbox: 12, at: 5 },
    ])
    expect(otherRegistersUnsent(r1, storage)).toEqual([])
    rememberUnsent(r1, { sales: 0, amount: 0, outbox: 0, at: 6 }, storage)
    expect(otherRegistersUnsent(r2, storage)).toEqual([])
  })

  it('ignores what it cannot read', () => {
    const storage = memoryStorage()
    storage.setItem('ledgerline.unsent', '{"s1-r1":{"store":1},"x":null}')
    expect(otherRegistersUnsent({ store: 's1', register: 'r2' }, storage)).toEqual([])
    storage.setItem('ledgerline.unsent', 'not json')
    expect(otherRegistersUnsent({ store: 's1', register: 'r2' }, storage)).toEqual([])
  })
})
