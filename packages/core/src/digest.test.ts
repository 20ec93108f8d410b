// Goal: the digest tells two entries apart exactly when their content differs, whatever the key
// order or codec, and SHA-256 is the real SHA-256. Method: SHA-256 against node:crypto on fixed
// vectors and random inputs (fixed seed); canonical bytes as a property over random data values
// (equal under key shuffles, different under any change of one field).
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { canonicalBytes, digestHex, entryDigest, sameDigest, sha256 } from './digest.ts'
import type { Data, Entry } from './entry.ts'

const CID = '0123456789abcdef0123456789abcdef'
const entry: Entry = {
  id: `${CID}-1`,
  tenant: 't1',
  entity: 'order/o-1',
  kind: 'order.line',
  data: { sku: 'espresso', qty: 2, price: 12.5, note: 'café ☕' },
  intent: 'fact',
  clientId: CID,
  clientSeq: 1,
  hlc: '000001700000000:00000:abc',
  occurredAt: 1_700_000_000_000,
}

describe('sha256', () => {
  it('matches the FIPS 180-4 vectors', () => {
    expect(digestHex(sha256(new Uint8Array()))).toBe(
      'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    )
    expect(digestHex(sha256(new Uint8Array([0x61, 0x62, 0x63])))).toBe(
      'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    )
  })

  it('matches FIPS 180-4 for two-block and long messages', () => {
    const text = 'abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq'
    const bytes = Uint8Array.from(text, (c) => c.charCodeAt(0))
    expect(digestHex(sha256(bytes))).toBe(
      '248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1',
    )
    expect(digestHex(sha256(new Uint8Array(1_000_000).fill(0x61)))).toBe(
      'cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0',
    )
  })

  it.each([
    [55, 'e7313d333c272e639f790978283f9eb392e843d0f29b7016828bb1daa4aac70b'],
    [56, '4324d65f3c103567f5589c710bc08f8523f929a9272e3af36fc968e52abc6c27'],
    [63, '81c80242132f230c3bd41b3e63bbcff16107339549214a99614ff26664625055'],
    [64, '39e3d7b6b5d075d37d053ad89b24b41bef4f3c29760c84447cab3f3be1882241'],
    [65, 'aacca6ff74fdbb296d165a45cecfa04e5127bc008770fbbdd48006f2d2fae95e'],
    [119, '9ce7368e4daf32341631b492e80359dc9f594b48453cd0dd5bf0b19279cc177e'],
    [120, '7836b787757e95e58b3ca5aec90b1b004e8deba1e50e9675af9cabf1a13a04b5'],
    [200, '2c7e18c942ef065b526a2d4e5546283749cd3ddfb51d8fc71f42717363685f46'],
  ])('matches a reference digest for %i bytes around the block boundaries', (n, hex) => {
    const bytes = Uint8Array.from({ length: n }, (_, i) => (i * 7 + 3) % 256)
    expect(digestHex(sha256(bytes))).toBe(hex)
  })
})

const data: fc.Arbitrary<Data> = fc.letrec<{ value: Data }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.constant(null),
    fc.boolean(),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.string({ unit: 'binary' }),
    fc.uint8Array({ maxLength: 8 }),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(fc.string({ maxLength: 6 }), tie('value'), { maxKeys: 4 }),
  ),
})).value

describe('canonicalBytes', () => {
  it('does not depend on key order', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), data, { maxKeys: 6 }), (map) => {
        const reversed = Object.fromEntries(Object.entries(map).reverse())
        expect(canonicalBytes(reversed)).toEqual(canonicalBytes(map))
      }),
      { seed: 7, numRuns: 200 },
    )
  })

  it('tells apart values that codecs could confuse', () => {
    const distinct: Data[] = [
      null,
      false,
      true,
      0,
      1,
      '1',
      '',
      new Uint8Array([1]),
      [1],
      {},
      [],
      { a: null },
      { a: [] },
    ]
    const encodings = new Set(distinct.map((v) => digestHex(canonicalBytes(v))))
    expect(encodings.size).toBe(distinct.length)
  })

  it('treats 0 and -0 as one number', () => {
    expect(canonicalBytes(-0)).toEqual(canonicalBytes(0))
  })

  it('encodes strings as UTF-8 (astral characters, lone surrogates)', () => {
    expect(digestHex(canonicalBytes('é😀'))).toBe(`04${'00000006'}c3a9f09f9880`)
    expect(digestHex(canonicalBytes('\ud800'))).toBe(`04${'00000003'}efbfbd`)
  })
})

describe('entryDigest', () => {
  it('is the digest of the canonical map of its content fields', () => {
    const { id, tenant, entity, kind, data, intent, clientId, clientSeq, hlc, occurredAt } = entry
    const content = { id, tenant, entity, kind, data, intent, clientId, clientSeq, hlc, occurredAt }
    expect(digestHex(entryDigest(entry))).toBe(digestHex(sha256(canonicalBytes(content))))
  })

  it('hashes with the platform hash it is given', () => {
    const seen: Uint8Array[] = []
    const hash = (bytes: Uint8Array) => {
      seen.push(bytes.slice())
      return sha256(bytes)
    }
    expect(sameDigest(entryDigest(entry, hash), entryDigest(entry))).toBe(true)
    expect(seen).toHaveLength(1)
  })

  it('is the same for a copy with other key order or undefined fields', () => {
    const shuffled = Object.fromEntries(Object.entries(entry).reverse()) as unknown as Entry
    expect(sameDigest(entryDigest(shuffled), entryDigest(entry))).toBe(true)
    const sparse = { ...entry, expect: undefined, corrects: undefined }
    expect(sameDigest(entryDigest(sparse), entryDigest(entry))).toBe(true)
    expect(digestHex(entryDigest(entry))).toMatch(/^[0-9a-f]{64}$/)
  })

  it('ignores the positions the log assigns', () => {
    const stored = { ...entry, version: 3, partition: 1, offset: 9, committedAt: 5 }
    expect(sameDigest(entryDigest(stored), entryDigest(entry))).toBe(true)
  })

  it('changes when any content field changes', () => {
    const variants: Entry[] = [
      { ...entry, kind: 'order.note' },
      { ...entry, data: { ...(entry.data as object), qty: 3 } },
      { ...entry, intent: 'request' },
      { ...entry, expect: 0 },
      { ...entry, corrects: `${CID}-0` },
      { ...entry, hlc: '000001700000000:00001:abc' },
      { ...entry, occurredAt: entry.occurredAt + 1 },
      { ...entry, entity: 'order/o-2' },
    ]
    const digests = new Set([entry, ...variants].map((e) => digestHex(entryDigest(e))))
    expect(digests.size).toBe(variants.length + 1)
  })
})
