// Goal: validateEntry / validateStoredEntry / checkData / checkKind accept well-formed entries and
// refuse every malformed field with a LedgerError naming that field, including prototype
// poisoning keys, sparse arrays and over-deep data. Method: one valid entry, then one mutation
// per field, each checked for kind and message.
import { describe, expect, it } from 'vitest'
import type { Entry } from './entry.ts'
import { byClientSeq, checkData, checkKind, validateEntry, validateStoredEntry } from './entry.ts'
import { LedgerError } from './errors.ts'
import { DATA_DEPTH_MAX, PARTITIONS_MAX } from './limits.ts'

const CID = '0123456789abcdef0123456789abcdef'
const HLC = '001732700000000:00000:0123456789abcdef0123456789abcdef'

const entry: Entry = {
  id: `${CID}-1`,
  tenant: 'acme',
  entity: 'stock/s7:espresso-1kg',
  kind: 'stock.moved',
  data: { qty: -1, sku: 'espresso-1kg', tags: ['sale'], blob: new Uint8Array([1, 2]) },
  intent: 'fact',
  clientId: CID,
  clientSeq: 1,
  hlc: HLC,
  occurredAt: 1_732_700_000_000,
}
const correction: Entry = {
  ...entry,
  id: `${CID}-1~nonnegative~0`,
  kind: 'stock.oversold',
  data: { short: 1 },
  corrects: `${CID}-1`,
  clientId: 'server',
  clientSeq: 0,
}
const stored = { ...entry, version: 1, partition: 3, offset: 17, committedAt: 1_732_700_000_500 }

function ledgerError(fn: () => unknown): LedgerError {
  try {
    fn()
  } catch (error) {
    if (error instanceof LedgerError) return error
    throw new Error(`expected a LedgerError, got ${String(error)}`)
  }
  throw new Error('expected a LedgerError, nothing was thrown')
}

describe('validateEntry', () => {
  it('returns valid entries, requests with expect, corrections and server snapshots', () => {
    expect(validateEntry(entry)).toBe(entry)
    const request = { ...entry, intent: 'request', expect: 0 }
    expect(validateEntry(request)).toBe(request)
    expect(validateEntry(correction)).toBe(correction)
    // A CRDT snapshot names what it covers in its data, not in `corrects` (issue 13 case 5).
    const snapshot = {
      ...entry,
      id: `${CID}-1~snapshot~0`,
      kind: 'yjs.snapshot',
      data: { through: 1, state: new Uint8Array([0]) },
      clientId: 'server',
      clientSeq: 0,
    }
    expect(validateEntry(snapshot)).toBe(snapshot)
  })

  it.each([
    [null, 'invalid_entry', 'entry entry must be an object'],
    [[], 'invalid_entry', 'entry entry must be an object'],
    [{ ...entry, tenant: 'a b' }, 'invalid_tenant', 'tenant'],
    [{ ...entry, entity: 'stock' }, 'invalid_entity', 'one slash'],
    [{ ...entry, kind: 'Stock.Moved' }, 'invalid_entry', 'entry kind'],
    [{ ...entry, kind: 'stock..moved' }, 'invalid_entry', 'entry kind'],
    [{ ...entry, data: undefined }, 'invalid_entry', 'entry data must be plain data'],
    [{ ...entry, data: { n: Number.NaN } }, 'invalid_entry', 'entry data.n must be a finite'],
    [{ ...entry, intent: 'wish' }, 'invalid_entry', 'entry intent'],
    [{ ...entry, expect: 1 }, 'invalid_entry', 'entry expect is only allowed on requests'],
    [{ ...entry, intent: 'request', expect: -1 }, 'invalid_entry', 'entry expect must be'],
    [{ ...entry, intent: 'request', expect: null }, 'invalid_entry', 'entry expect must be'],
    [{ ...entry, corrects: 'x' }, 'invalid_entry', 'entry corrects'],
    [{ ...entry, clientId: 'ABC' }, 'invalid_entry', 'entry clientId'],
    [{ ...entry, clientSeq: 0 }, 'invalid_entry', 'entry clientSeq'],
    [{ ...entry, clientSeq: 1.5 }, 'invalid_entry', 'entry clientSeq'],
    [{ ...entry, clientSeq: 2 }, 'invalid_entry', "entry id must be '<clientId>-<clientSeq>'"],
    [{ ...entry, id: 7 }, 'invalid_entry', 'entry id must be an entry id'],
    [{ ...entry, hlc: 'now' }, 'invalid_hlc', 'hlc'],
    [{ ...entry, occurredAt: -1 }, 'invalid_entry', 'entry occurredAt'],
    [{ ...entry, occurredAt: Number.POSITIVE_INFINITY }, 'invalid_entry', 'entry occurredAt'],
    [{ ...correction, clientSeq: 5 }, 'invalid_entry', 'entry clientSeq must be 0 on a correction'],
    [
      { ...correction, corrects: undefined, id: `${CID}-1` },
      'invalid_entry',
      'entry id of a server entry',
    ],
    [{ ...correction, id: `${CID}-2~nonnegative~0` }, 'invalid_entry', 'entry id of a correction'],
    [{ ...correction, id: `${CID}-1` }, 'invalid_entry', 'entry id of a correction'],
  ])('refuses mutation %# with %s', (value, kind, message) => {
    const error = ledgerError(() => validateEntry(value))
    expect(error.kind).toBe(kind)
    expect(error.message).toContain(message)
  })
})

describe('validateStoredEntry', () => {
  it('returns valid stored entries', () => {
    expect(validateStoredEntry(stored)).toBe(stored)
  })

  it.each([
    [{ ...entry }, 'entry version'],
    [{ ...stored, version: 0 }, 'entry version'],
    [{ ...stored, partition: -1 }, 'entry partition'],
    [{ ...stored, partition: PARTITIONS_MAX }, 'entry partition'],
    [{ ...stored, offset: 0 }, 'entry offset'],
    [{ ...stored, committedAt: 'soon' }, 'entry committedAt'],
    [{ ...stored, kind: '' }, 'entry kind'],
  ])('refuses mutation %#', (value, message) => {
    const error = ledgerError(() => validateStoredEntry(value))
    expect(error.kind).toBe('invalid_entry')
    expect(error.message).toContain(message)
  })
})

describe('checkData', () => {
  it('accepts plain data and null-prototype objects', () => {
    const bare = Object.assign(Object.create(null) as object, { a: 1 })
    for (const value of [
      null,
      true,
      0,
      -1.5,
      '',
      'x',
      new Uint8Array(3),
      [1, [2]],
      { a: { b: [] } },
      bare,
    ]) {
      expect(checkData(value)).toBe(value)
    }
  })

  it.each([
    [JSON.parse('{"__proto__": {"admin": true}}'), 'data.__proto__ is a reserved key'],
    [{ nested: { constructor: 1 } }, 'data.nested.constructor is a reserved key'],
    [{ prototype: 1 }, 'data.prototype is a reserved key'],
    [[1, undefined], 'data[1] must be plain data, got undefined'],
    // A hole of a sparse array is undefined too, and forEach would skip it.
    [Object.assign([], { 1: 1 }) as unknown[], 'data[0] must be plain data'],
    [{ when: new Date(0) }, 'data.when must be plain data, got object'],
    [{ f: () => 1 }, 'data.f must be plain data, got function'],
    [{ n: 1n }, 'data.n must be plain data, got bigint'],
    [new Map(), 'data must be plain data'],
    [new Uint16Array(2), 'data must be plain data'],
    [{ n: Number.POSITIVE_INFINITY }, 'data.n must be a finite number'],
  ])('refuses %# naming the path', (value, message) => {
    const error = ledgerError(() => checkData(value))
    expect(error.kind).toBe('invalid_entry')
    expect(error.message).toContain(message)
  })

  it('accepts data nested DATA_DEPTH_MAX deep and refuses one level more', () => {
    const nest = (levels: number): unknown => {
      let value: unknown = 1
      for (let i = 0; i < levels; i++) value = [value]
      return value
    }
    expect(() => checkData(nest(DATA_DEPTH_MAX))).not.toThrow()
    expect(ledgerError(() => checkData(nest(DATA_DEPTH_MAX + 1))).message).toContain(
      `nests deeper than ${DATA_DEPTH_MAX}`,
    )
    // Far too deep: refused long before the call stack could overflow.
    expect(ledgerError(() => checkData(nest(10_000))).kind).toBe('invalid_entry')
  })
})

describe('checkKind and byClientSeq', () => {
  it('checkKind returns dotted lowercase kinds and refuses others', () => {
    expect(checkKind('stock.moved')).toBe('stock.moved')
    expect(checkKind('ledger.correction_failed')).toBe('ledger.correction_failed')
    for (const bad of ['', '.x', 'x.', 'X', 'a b', 'k'.repeat(65), 3]) {
      expect(ledgerError(() => checkKind(bad)).message).toContain('entry kind must match')
    }
  })

  it('byClientSeq sorts one client’s entries in the order they were made', () => {
    const e3 = { ...entry, clientSeq: 3 }
    const e1 = { ...entry, clientSeq: 1 }
    const e2 = { ...entry, clientSeq: 2 }
    expect([e3, e1, e2].sort(byClientSeq)).toEqual([e1, e2, e3])
  })
})
