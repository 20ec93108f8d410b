// Goal: partitionOf is the stable FNV-1a hash the design fixes, so ledgers never move between
// partitions across releases or platforms. Method: pinned values (a change to the hash fails
// here), an independent FNV-1a over TextEncoder bytes checked against published test vectors
// and compared on random names (seed 99), and bad inputs that must give LedgerError.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { LedgerError } from './errors.ts'
import { PARTITIONS_MAX } from './limits.ts'
import { checkPartitions, partitionOf } from './partition.ts'

function fnv1a(bytes: Uint8Array): number {
  let hash = 0x811c9dc5
  for (const b of bytes) hash = Math.imul(hash ^ b, 0x01000193) >>> 0
  return hash
}

function reference(tenant: string, entity: string, partitions: number): number {
  const t = new TextEncoder().encode(tenant)
  const e = new TextEncoder().encode(entity)
  const bytes = new Uint8Array(t.length + 1 + e.length)
  bytes.set(t, 0)
  bytes.set(e, t.length + 1)
  return fnv1a(bytes) % partitions
}

describe('partitionOf', () => {
  it('has pinned values: changing the hash would scatter existing ledgers', () => {
    expect(partitionOf('acme', 'stock/s7:espresso-1kg', 16)).toBe(PINNED[0])
    expect(partitionOf('acme', 'order/s7-r1-0042', 16)).toBe(PINNED[1])
    expect(partitionOf('acme', 'order/s7-r1-0042', 1024)).toBe(PINNED[2])
    expect(partitionOf('other', 'order/s7-r1-0042', 1024)).toBe(PINNED[3])
    expect(partitionOf('acme', 'order/s7-r1-0042', 1)).toBe(0)
  })

  it('the reference hash matches published FNV-1a 32 vectors', () => {
    const enc = new TextEncoder()
    expect(fnv1a(enc.encode(''))).toBe(0x811c9dc5)
    expect(fnv1a(enc.encode('a'))).toBe(0xe40c292c)
    expect(fnv1a(enc.encode('foobar'))).toBe(0xbf9cf968)
  })

  it('equals FNV-1a over tenant, a zero byte and entity (seed 99)', () => {
    const name = fc.stringMatching(/^[a-z][a-z0-9_-]{0,8}\/[A-Za-z0-9._:~@+-]{1,20}$/)
    const tenant = fc.stringMatching(/^[A-Za-z0-9._-]{1,16}$/)
    fc.assert(
      fc.property(tenant, name, fc.integer({ min: 1, max: PARTITIONS_MAX }), (t, e, n) => {
        const p = partitionOf(t, e, n)
        expect(p).toBe(reference(t, e, n))
        expect(partitionOf(t, e, n)).toBe(p)
      }),
      { seed: 99, numRuns: 200 },
    )
  })

  it.each([
    [['bad tenant', 'order/1', 16], 'invalid_tenant'],
    [['acme', 'order', 16], 'invalid_entity'],
    [['acme', 'order/1', 0], 'invalid_argument'],
    [['acme', 'order/1', PARTITIONS_MAX + 1], 'invalid_argument'],
    [['acme', 'order/1', 2.5], 'invalid_argument'],
  ])('refuses %j', (args, kind) => {
    let caught: unknown
    try {
      partitionOf(...(args as [string, string, number]))
    } catch (error) {
      caught = error
    }
    expect(caught).toBeInstanceOf(LedgerError)
    expect((caught as LedgerError).kind).toBe(kind)
  })

  it('checkPartitions returns a valid count', () => {
    expect(checkPartitions(16)).toBe(16)
    expect(() => checkPartitions('16')).toThrow(/partitions must be an integer in 1..1024/)
  })
})

// Computed once with the reference FNV-1a above (itself checked against published vectors).
const PINNED = [2, 13, 189, 759]
