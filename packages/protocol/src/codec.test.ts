// Goal: every message round-trips through encodeMessage/decodeMessage unchanged (Uint8Array data
// stays Uint8Array, absent optional fields stay absent), and no byte string whatsoever makes
// decodeMessage throw anything but a ProtocolError or take long. Method: one realistic message
// per type; a fast-check property (fixed seed) over generated valid messages of every type;
// fuzzing with random bytes and with mutated valid frames (bit flips, truncation, splices,
// overwrites), fixed seeds; and hand-built hostile frames, each checked for its kind and for a
// message naming the field.
import type { Data, Entry, StoredEntry } from '@ledgerline/core'
import { encodeHlc } from '@ledgerline/core'
import { encode } from '@msgpack/msgpack'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { decodeMessage, encodeMessage } from './codec.ts'
import { ERROR_KINDS, type ErrorKind } from './error-kind.ts'
import {
  ENTRY_DATA_BYTES_MAX,
  FRAME_BYTES_MAX,
  FRAME_DEPTH_MAX,
  MESSAGE_LENGTH_MAX,
  PUSH_ENTRIES_MAX,
  TOKEN_LENGTH_MAX,
} from './limits.ts'
import type { AckResult, Message } from './messages.ts'
import { MESSAGE_TYPES } from './messages.ts'
import { isProtocolError, ProtocolError } from './protocol-error.ts'
import { PROTOCOL_VERSION } from './protocol-version.ts'

const CID = '3f1c0a9b8e7d6c5b4a39281706f5e4d3'
const HLC = `001732700000000:00002:${CID}`

const sale: Entry = {
  id: `${CID}-42`,
  tenant: 'acme-coffee',
  entity: 'stock/s7:espresso-1kg',
  kind: 'stock.moved',
  data: { qty: -1, sale: 'order/s7-r1-0042', price: 12.5, tags: ['till-1', null, true] },
  intent: 'fact',
  clientId: CID,
  clientSeq: 42,
  hlc: HLC,
  occurredAt: 1_732_700_000_000,
}
const redeem: Entry = {
  ...sale,
  id: `${CID}-43`,
  entity: 'giftcard/gc-77',
  kind: 'giftcard.redeemed',
  data: { amount: 20 },
  intent: 'request',
  expect: 4,
  clientSeq: 43,
}
const yjsUpdate: Entry = {
  ...sale,
  id: `${CID}-44`,
  entity: 'note/s7-handover',
  kind: 'crdt.update',
  data: new Uint8Array([1, 2, 3, 250, 0, 7]),
  clientSeq: 44,
}
const stored: StoredEntry = {
  ...sale,
  version: 9,
  partition: 2,
  offset: 1207,
  committedAt: 1_732_700_000_480,
}
const oversold: StoredEntry = {
  ...sale,
  id: `${CID}-42~nonnegative~0`,
  kind: 'stock.oversold',
  data: { short: 1, sale: `${CID}-42` },
  corrects: `${CID}-42`,
  clientId: 'server',
  clientSeq: 0,
  occurredAt: 1_732_700_000_480,
  version: 10,
  partition: 2,
  offset: 1208,
  committedAt: 1_732_700_000_480,
}

const EXAMPLES: Record<Message['type'], Message> = {
  hello: {
    type: 'hello',
    protocol: PROTOCOL_VERSION,
    token: 'eyJhbGciOiJFUzI1NiJ9.e30.sig',
    clientId: CID,
  },
  welcome: {
    type: 'welcome',
    protocol: PROTOCOL_VERSION,
    tenant: 'acme-coffee',
    subject: 'register-1',
    grants: { read: ['stock/s7:*', 'order/s7-*'], write: ['order/s7-*'] },
    role: 'hub',
    upstream: { connected: false, since: 1_732_699_000_000 },
    log: { id: 'Vt3kq0sVx2Jm8cQe1aZr4w', generation: 2 },
    limits: {
      pushEntriesMax: 500,
      pushBytesMax: 1_048_576,
      entryDataBytesMax: 65_536,
      pushInFlightMax: 4,
    },
    partitions: 16,
    clientSeqHigh: 41,
    serverTime: 1_732_700_000_000,
    expiresAt: 1_732_703_600_000,
  },
  push: {
    type: 'push',
    batch: 3,
    entries: [sale, redeem, yjsUpdate],
    subjects: { [CID]: 'register-1' },
  },
  ack: {
    type: 'ack',
    batch: 3,
    first: 0,
    done: true,
    results: [
      {
        id: sale.id,
        status: 'appended',
        version: 9,
        partition: 2,
        offset: 1207,
        committedAt: 1_732_700_000_480,
        corrections: [
          {
            id: oversold.id,
            entity: oversold.entity,
            kind: oversold.kind,
            version: oversold.version,
            partition: oversold.partition,
            offset: oversold.offset,
          },
        ],
      },
      {
        id: redeem.id,
        status: 'refused',
        code: 'conflict',
        reason: 'expected version 4, entity is at 5',
        head: 5,
      },
      {
        id: yjsUpdate.id,
        status: 'duplicate',
        version: 3,
        partition: 11,
        offset: 88,
        committedAt: 1_732_600_000_000,
        corrections: [],
      },
      {
        id: `${CID}-44`,
        status: 'id_conflict',
        reason: 'the log holds another entry under this id',
      },
      {
        id: `${CID}-45`,
        status: 'deferred',
        code: 'unknown_type',
        reason: "no entity type for 'loyalty/c-9'",
        retryAfterMs: 30_000,
      },
    ],
  },
  renew: { type: 'renew', token: 'eyJhbGciOiJFUzI1NiJ9.e30.sig2' },
  store: { type: 'store', sub: 1, entries: [sale], removed: [redeem.id], reset: false },
  upstream: { type: 'upstream', connected: true, since: 1_732_700_100_000 },
  renewed: {
    type: 'renewed',
    expiresAt: 1_732_707_200_000,
    grants: { read: ['stock/s7:*'], write: [] },
  },
  subscribe: {
    type: 'subscribe',
    sub: 1,
    scope: ['stock/s7:*', 'order/s7-*'],
    cursors: { 2: 1206, 11: 0 },
    credit: 4,
  },
  entries: {
    type: 'entries',
    sub: 1,
    entries: [stored, oversold],
    cursors: { 2: 1208 },
    live: false,
  },
  snapshots: {
    type: 'snapshots',
    sub: 1,
    snapshots: [
      {
        entity: stored.entity,
        foldKey: 'stock@1',
        version: 512,
        partition: 2,
        offset: 1100,
        committedAt: 1_732_700_000_000,
        state: { onHand: 12, byReason: { sale: -30 }, raw: new Uint8Array([1, 2]) },
      },
    ],
  },
  fetch: { type: 'fetch', req: 7, entity: stored.entity, before: 513 },
  fetched: { type: 'fetched', req: 7, entity: stored.entity, entries: [stored], done: false },
  credit: { type: 'credit', sub: 1, pages: 2 },
  ping: { type: 'ping', t: 1_732_700_000_123 },
  pong: { type: 'pong', t: 1_732_700_000_123 },
  error: {
    type: 'error',
    kind: 'rate_limited',
    message: 'over 200 messages per second',
    backoffMsMin: 1000,
  },
}

function protocolError(fn: () => unknown): ProtocolError {
  try {
    fn()
  } catch (error) {
    if (isProtocolError(error)) return error
    throw new Error(`expected a ProtocolError, got ${String(error)}`)
  }
  throw new Error('expected a ProtocolError, nothing was thrown')
}

// Decodes, and fails the test if anything but a valid message or a ProtocolError comes out.
function decodeOrProtocolError(bytes: Uint8Array): Message | ProtocolError {
  try {
    return decodeMessage(bytes)
  } catch (error) {
    if (error instanceof ProtocolError) return error
    throw new Error(`decodeMessage escaped with ${String(error)}`)
  }
}

describe('round trip of every message type', () => {
  it('has an example for each type', () => {
    expect(Object.keys(EXAMPLES).sort()).toEqual([...MESSAGE_TYPES].sort())
  })

  it.each(MESSAGE_TYPES)('%s', (type) => {
    const message = EXAMPLES[type]
    const bytes = encodeMessage(message)
    expect(bytes).toBeInstanceOf(Uint8Array)
    expect(decodeMessage(bytes)).toStrictEqual(message)
    // An ArrayBuffer (a browser WebSocket's binaryType) decodes alike.
    expect(decodeMessage(bytes.slice().buffer)).toStrictEqual(message)
  })

  it('keeps Uint8Array data a Uint8Array, copied out of the frame', () => {
    const bytes = encodeMessage(EXAMPLES.push)
    const decoded = decodeMessage(bytes)
    if (decoded.type !== 'push') throw new Error('not a push')
    const data = decoded.entries[2]!.data
    expect(data).toBeInstanceOf(Uint8Array)
    expect(Object.getPrototypeOf(data)).toBe(Uint8Array.prototype)
    expect((data as Uint8Array).buffer).not.toBe(bytes.buffer)
    expect((data as Uint8Array).byteLength).toBe((data as Uint8Array).buffer.byteLength)
  })

  it('leaves undefined optional fields out', () => {
    const withUndefined = { ...sale, expect: undefined, corrects: undefined }
    const decoded = decodeMessage(
      encodeMessage({ type: 'push', batch: 1, entries: [withUndefined] }),
    )
    if (decoded.type !== 'push') throw new Error('not a push')
    expect(Object.keys(decoded.entries[0]!)).not.toContain('expect')
    expect(decoded.entries[0]).toStrictEqual(sale)
  })

  it('drops unknown fields at every level rather than passing them on', () => {
    const frame = encode({ type: 'push', batch: 1, future: 1, entries: [{ ...sale, shard: 'x' }] })
    expect(decodeMessage(frame)).toStrictEqual({ type: 'push', batch: 1, entries: [sale] })
  })
})

// Valid messages of every type, for the round-trip property.
const clientIdArb = fc.stringMatching(/^[0-9a-f]{32}$/)
const tenantArb = fc.stringMatching(/^[A-Za-z0-9._-]{1,16}$/)
const entityArb = fc.stringMatching(/^[a-z][a-z0-9_-]{0,8}\/[A-Za-z0-9._:~@+-]{1,24}$/)
const patternArb = fc.stringMatching(/^[A-Za-z0-9._:~@+/*-]{1,24}$/)
const kindArb = fc.stringMatching(/^[a-z][a-z0-9_]{0,8}(\.[a-z0-9_]{1,8}){0,2}$/)
const keyArb = fc
  .string({ maxLength: 8 })
  .filter((k) => !['__proto__', 'constructor', 'prototype'].includes(k))
const { data: dataArb } = fc.letrec<{ data: Data }>((tie) => ({
  data: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constant(null),
    fc.boolean(),
    fc.integer(),
    // -0 is left out: MessagePack writes it as the integer 0.
    fc.double({ noNaN: true, noDefaultInfinity: true }).filter((d) => !Object.is(d, -0)),
    fc.string({ maxLength: 20 }),
    fc.uint8Array({ maxLength: 20 }),
    fc.array(tie('data'), { maxLength: 4 }),
    fc.dictionary(keyArb, tie('data'), { maxKeys: 4 }),
  ),
}))
const hlcArb = fc
  .record({
    ms: fc.integer({ min: 0, max: 10 ** 15 - 1 }),
    count: fc.integer({ min: 0, max: 99_999 }),
    node: clientIdArb,
  })
  .map(encodeHlc)
const timeArb = fc.integer({ min: 0, max: 4_102_444_800_000 })
const seqArb = fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER })
const countArb = fc.nat({ max: Number.MAX_SAFE_INTEGER })

const entryArb: fc.Arbitrary<Entry> = fc
  .record({
    clientId: clientIdArb,
    clientSeq: seqArb,
    tenant: tenantArb,
    entity: entityArb,
    kind: kindArb,
    data: dataArb,
    request: fc.boolean(),
    expect: fc.option(countArb, { nil: undefined }),
    corrects: fc.option(
      fc.tuple(clientIdArb, seqArb).map(([c, s]) => `${c}-${s}`),
      { nil: undefined },
    ),
    hlc: hlcArb,
    occurredAt: timeArb,
  })
  .map((r) => ({
    id: `${r.clientId}-${r.clientSeq}`,
    tenant: r.tenant,
    entity: r.entity,
    kind: r.kind,
    data: r.data,
    intent: r.request ? ('request' as const) : ('fact' as const),
    ...(r.request && r.expect !== undefined ? { expect: r.expect } : {}),
    ...(r.corrects === undefined ? {} : { corrects: r.corrects }),
    clientId: r.clientId,
    clientSeq: r.clientSeq,
    hlc: r.hlc,
    occurredAt: r.occurredAt,
  }))
const storedArb: fc.Arbitrary<StoredEntry> = fc
  .record({
    entry: entryArb,
    version: seqArb,
    partition: fc.integer({ min: 0, max: 1023 }),
    offset: seqArb,
    committedAt: timeArb,
  })
  .map(({ entry, ...at }) => ({ ...entry, ...at }))
const cursorsArb = fc
  .array(fc.tuple(fc.integer({ min: 0, max: 1023 }), countArb), { maxLength: 8 })
  .map((pairs) => Object.fromEntries(pairs) as Record<number, number>)
const ackResultArb: fc.Arbitrary<AckResult> = fc.oneof(
  fc.record({
    id: entryArb.map((e) => e.id),
    status: fc.constantFrom('appended' as const, 'duplicate' as const),
    version: seqArb,
    partition: fc.integer({ min: 0, max: 1023 }),
    offset: seqArb,
    committedAt: timeArb,
    corrections: fc.array(
      storedArb.map((e) => ({
        id: e.id,
        entity: e.entity,
        kind: e.kind,
        version: e.version,
        partition: e.partition,
        offset: e.offset,
      })),
      { maxLength: 2 },
    ),
  }),
  fc.record({
    id: entryArb.map((e) => e.id),
    status: fc.constant('refused' as const),
    code: fc.constantFrom(
      'conflict' as const,
      'invariant' as const,
      'invalid' as const,
      'forbidden' as const,
      'seq_gap' as const,
    ),
    reason: fc.string({ maxLength: 40 }),
    head: countArb,
  }),
  fc.record({ id: entryArb.map((e) => e.id), status: fc.constant('stored' as const) }),
  fc.record({
    id: entryArb.map((e) => e.id),
    status: fc.constant('id_conflict' as const),
    reason: fc.string({ maxLength: 40 }),
  }),
  fc.record({
    id: entryArb.map((e) => e.id),
    status: fc.constant('deferred' as const),
    code: fc.constantFrom('unknown_type' as const, 'clock_ahead' as const),
    reason: fc.string({ maxLength: 40 }),
    retryAfterMs: countArb,
  }),
)
const messageArb: fc.Arbitrary<Message> = fc.oneof(
  fc.record({
    type: fc.constant('hello' as const),
    protocol: seqArb,
    token: fc.string({ minLength: 1, maxLength: 60 }),
    clientId: clientIdArb,
  }),
  fc.record({
    type: fc.constant('welcome' as const),
    protocol: seqArb,
    tenant: tenantArb,
    subject: fc.string({ minLength: 1, maxLength: 30 }),
    grants: fc.record({
      read: fc.array(patternArb, { maxLength: 3 }),
      write: fc.array(patternArb, { maxLength: 3 }),
    }),
    role: fc.constantFrom('head_office' as const, 'hub' as const),
    log: fc.record({
      id: fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/),
      generation: fc.integer({ min: 1, max: 2 ** 40 }),
    }),
    limits: fc.record({
      pushEntriesMax: fc.integer({ min: 1, max: 500 }),
      pushBytesMax: fc.integer({ min: 1024, max: 1024 * 1024 }),
      entryDataBytesMax: fc.integer({ min: 1, max: 64 * 1024 }),
      pushInFlightMax: fc.integer({ min: 1, max: 4 }),
    }),
    partitions: fc.integer({ min: 1, max: 1024 }),
    clientSeqHigh: countArb,
    serverTime: timeArb,
    expiresAt: timeArb,
  }),
  fc.record({
    type: fc.constant('push' as const),
    batch: countArb,
    entries: fc.array(entryArb, { maxLength: 4 }),
  }),
  fc.record({
    type: fc.constant('ack' as const),
    batch: countArb,
    first: fc.integer({ min: 0, max: 490 }),
    results: fc.array(ackResultArb, { maxLength: 4 }),
    done: fc.boolean(),
  }),
  fc.record({
    type: fc.constant('store' as const),
    sub: countArb,
    entries: fc.array(entryArb, { maxLength: 3 }),
    removed: fc.array(
      entryArb.map((e) => e.id),
      { maxLength: 3 },
    ),
    reset: fc.boolean(),
  }),
  fc.record({ type: fc.constant('upstream' as const), connected: fc.boolean(), since: timeArb }),
  fc.record({
    type: fc.constant('renew' as const),
    token: fc.string({ minLength: 1, maxLength: 60 }),
  }),
  fc.record({
    type: fc.constant('renewed' as const),
    expiresAt: timeArb,
    grants: fc.record({
      read: fc.array(patternArb, { maxLength: 3 }),
      write: fc.array(patternArb, { maxLength: 3 }),
    }),
  }),
  fc.record({
    type: fc.constant('subscribe' as const),
    sub: countArb,
    scope: fc.array(patternArb, { minLength: 1, maxLength: 4 }),
    cursors: cursorsArb,
    credit: fc.integer({ min: 0, max: 64 }),
  }),
  fc.record({
    type: fc.constant('entries' as const),
    sub: countArb,
    entries: fc.array(storedArb, { maxLength: 4 }),
    cursors: cursorsArb,
    live: fc.boolean(),
  }),
  fc.record({
    type: fc.constant('credit' as const),
    sub: countArb,
    pages: fc.integer({ min: 1, max: 64 }),
  }),
  fc.record({
    type: fc.constant('ping' as const),
    t: fc.double({ noNaN: true, noDefaultInfinity: true }).filter((d) => !Object.is(d, -0)),
  }),
  fc.record({ type: fc.constant('pong' as const), t: countArb }),
  fc.record({
    type: fc.constant('error' as const),
    kind: fc.constantFrom(...(Object.keys(ERROR_KINDS) as ErrorKind[])),
    message: fc.string({ maxLength: 60 }),
    backoffMsMin: countArb,
  }),
)

describe('properties', () => {
  it('decode(encode(m)) deep-equals m for generated valid messages (seed 20241)', () => {
    fc.assert(
      fc.property(messageArb, (message) => {
        // fast-check makes null-prototype records; structuredClone gives the plain objects the
        // decoder returns, keeping Uint8Array and every key exactly.
        expect(decodeMessage(encodeMessage(message))).toStrictEqual(structuredClone(message))
      }),
      { seed: 20241, numRuns: 300 },
    )
  })

  it('random bytes never escape ProtocolError and decode quickly (seed 31337)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 512 }), (bytes) => {
        const start = performance.now()
        const result = decodeOrProtocolError(bytes)
        expect(performance.now() - start).toBeLessThan(250)
        expect(
          result instanceof ProtocolError ? ['bad_message', 'too_large'] : MESSAGE_TYPES,
        ).toContain(result instanceof ProtocolError ? result.kind : result.type)
      }),
      { seed: 31337, numRuns: 1000 },
    )
  })

  it('mutated valid frames never escape ProtocolError (seed 4242)', () => {
    const mutation = fc.oneof(
      fc.record({
        op: fc.constant('flip' as const),
        at: fc.nat(),
        bit: fc.integer({ min: 0, max: 7 }),
      }),
      fc.record({ op: fc.constant('truncate' as const), at: fc.nat() }),
      fc.record({
        op: fc.constant('splice' as const),
        at: fc.nat(),
        bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }),
      }),
      fc.record({
        op: fc.constant('overwrite' as const),
        at: fc.nat(),
        byte: fc.integer({ min: 0, max: 255 }),
      }),
    )
    fc.assert(
      fc.property(
        messageArb,
        fc.array(mutation, { minLength: 1, maxLength: 4 }),
        (message, mutations) => {
          let bytes = encodeMessage(message)
          for (const m of mutations) {
            const at = bytes.length === 0 ? 0 : m.at % bytes.length
            if (m.op === 'flip') bytes = flip(bytes, at, m.bit)
            else if (m.op === 'truncate') bytes = bytes.slice(0, at)
            else if (m.op === 'splice')
              bytes = Uint8Array.from([...bytes.slice(0, at), ...m.bytes, ...bytes.slice(at)])
            else bytes = overwrite(bytes, at, m.byte)
          }
          const start = performance.now()
          decodeOrProtocolError(bytes)
          expect(performance.now() - start).toBeLessThan(250)
        },
      ),
      { seed: 4242, numRuns: 600 },
    )
  })
})

describe('hostile frames', () => {
  const deep = (levels: number, leaf: number[]) =>
    Uint8Array.from([...Array.from({ length: levels }, () => 0x91), ...leaf])

  it.each([
    ['an empty frame', new Uint8Array(0), 'bad_message', 'frame is empty'],
    [
      '10k-deep nesting',
      deep(10_000, [0xc0]),
      'bad_message',
      `deeper than FRAME_DEPTH_MAX (${FRAME_DEPTH_MAX})`,
    ],
    [
      'an array claiming 4 billion items',
      Uint8Array.from([0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0]),
      'bad_message',
      'claims 4294967295 items',
    ],
    [
      'a map claiming 4 billion pairs',
      Uint8Array.from([0xdf, 0xff, 0xff, 0xff, 0xff]),
      'bad_message',
      'truncated',
    ],
    [
      'a str 32 claiming 4 GiB',
      Uint8Array.from([0xdb, 0xff, 0xff, 0xff, 0xff, 0x61]),
      'too_large',
      'ENTRY_DATA_BYTES_MAX',
    ],
    ['a truncated header', Uint8Array.from([0xcd, 0x01]), 'bad_message', 'truncated'],
    ['a timestamp extension', encode(new Date(0)), 'bad_message', 'extension type'],
    ['an ext 8 of length 0', Uint8Array.from([0xc7, 0x00, 0x05]), 'bad_message', 'extension type'],
    ['the never-used byte', Uint8Array.from([0xc1]), 'bad_message', '0xc1'],
    [
      'trailing bytes',
      Uint8Array.from([...encodeMessage({ type: 'ping', t: 1 }), 0xc0]),
      'bad_message',
      '1 bytes after the message',
    ],
    ['a bare number', encode(7), 'bad_message', 'message: must be a map'],
    ['an array', encode([]), 'bad_message', 'message: must be a map'],
    [
      'an unknown type',
      encode({ type: 'gossip' }),
      'bad_message',
      'message.type: must be one of hello',
    ],
    ['no type', encode({ t: 1 }), 'bad_message', 'message.type'],
    [
      'a __proto__ key',
      encode(JSON.parse('{"type":"ping","t":1,"__proto__":{"type":"x"}}')),
      'bad_message',
      '__proto__',
    ],
    [
      'a __proto__ key in data',
      encode({
        type: 'push',
        batch: 1,
        entries: [{ ...sale, data: JSON.parse('{"__proto__":{"admin":true}}') }],
      }),
      'bad_message',
      '__proto__',
    ],
    [
      'a constructor key in data',
      encode({ type: 'push', batch: 1, entries: [{ ...sale, data: { constructor: 1 } }] }),
      'bad_message',
      'push.entries[0]: entry data.constructor is a reserved key',
    ],
    ['a map key that is a map', Uint8Array.from([0x81, 0x80, 0xc0]), 'bad_message', 'key'],
    [
      'a uint64 batch number',
      encode({ type: 'push', batch: 2n ** 64n - 1n, entries: [] }, { useBigInt64: true }),
      'bad_message',
      'push.batch: must be an integer',
    ],
    [
      'a NaN ping',
      encode({ type: 'ping', t: Number.NaN }),
      'bad_message',
      'ping.t: must be a finite number',
    ],
    [
      'an infinite serverTime',
      encode({ ...EXAMPLES.welcome, serverTime: Number.POSITIVE_INFINITY }),
      'bad_message',
      'welcome.serverTime',
    ],
    [
      'a string where a number goes',
      encode({ type: 'credit', sub: '1', pages: 1 }),
      'bad_message',
      'credit.sub: must be an integer',
    ],
    [
      'a number where a string goes',
      encode({ ...EXAMPLES.hello, token: 7 }),
      'bad_message',
      'hello.token: must be a string',
    ],
    [
      'a too-long token',
      encode({ ...EXAMPLES.hello, token: 'x'.repeat(TOKEN_LENGTH_MAX + 1) }),
      'too_large',
      `hello.token: is ${TOKEN_LENGTH_MAX + 1} characters`,
    ],
    [
      'a too-long error message',
      encode({ ...EXAMPLES.error, message: 'x'.repeat(MESSAGE_LENGTH_MAX + 1) }),
      'too_large',
      'error.message',
    ],
    [
      'too many entries',
      encode({
        type: 'push',
        batch: 1,
        entries: Array.from({ length: PUSH_ENTRIES_MAX + 1 }, () => sale),
      }),
      'too_large',
      `push.entries: has ${PUSH_ENTRIES_MAX + 1} items, over PUSH_ENTRIES_MAX`,
    ],
    [
      'one too-long data string',
      encode({
        type: 'push',
        batch: 1,
        entries: [{ ...sale, data: 'x'.repeat(ENTRY_DATA_BYTES_MAX + 1) }],
      }),
      'too_large',
      'ENTRY_DATA_BYTES_MAX',
    ],
    [
      'data over its byte limit in small pieces',
      encode({
        type: 'push',
        batch: 1,
        entries: [{ ...sale, data: Array.from({ length: 70 }, () => 'x'.repeat(1000)) }],
      }),
      'too_large',
      'push.entries[0].data: is 70213 bytes encoded',
    ],
    [
      'data nested too deep for an entry',
      encode({
        type: 'push',
        batch: 1,
        entries: [{ ...sale, data: JSON.parse('['.repeat(34) + ']'.repeat(34)) }],
      }),
      'bad_message',
      'nests deeper than 32',
    ],
  ])('%s', (_name, bytes, kind, message) => {
    const error = protocolError(() => decodeMessage(bytes))
    expect(error.kind).toBe(kind)
    expect(error.message).toContain(message)
    expect(({} as Record<string, unknown>).admin).toBeUndefined()
  })

  it('refuses a frame over FRAME_BYTES_MAX before reading it', () => {
    const error = protocolError(() => decodeMessage(new Uint8Array(FRAME_BYTES_MAX + 1)))
    expect(error.kind).toBe('too_large')
    expect(error.message).toBe(
      `frame is ${FRAME_BYTES_MAX + 1} bytes, over FRAME_BYTES_MAX (${FRAME_BYTES_MAX})`,
    )
  })

  it('refuses input that is not bytes', () => {
    expect(protocolError(() => decodeMessage('hello' as never)).message).toContain(
      'must be a Uint8Array',
    )
    expect(protocolError(() => decodeMessage(null as never)).kind).toBe('bad_message')
  })

  it('decodes a 1 MiB frame of junk quickly', () => {
    const junk = new Uint8Array(FRAME_BYTES_MAX).fill(0x91)
    const start = performance.now()
    expect(protocolError(() => decodeMessage(junk)).kind).toBe('bad_message')
    expect(performance.now() - start).toBeLessThan(500)
  })
})

describe('encodeMessage', () => {
  it('refuses to make a frame over FRAME_BYTES_MAX', () => {
    const big = { ...sale, data: 'x'.repeat(60_000) }
    const error = protocolError(() =>
      encodeMessage({ type: 'push', batch: 1, entries: Array.from({ length: 20 }, () => big) }),
    )
    expect(error.kind).toBe('too_large')
    expect(error.message).toMatch(/^push frame is \d+ bytes, over FRAME_BYTES_MAX/)
  })

  it('refuses what MessagePack cannot carry or the peer would refuse', () => {
    const cyclic: Record<string, unknown> = {}
    cyclic.self = cyclic
    expect(
      protocolError(() =>
        encodeMessage({ type: 'push', batch: 1, entries: [{ ...sale, data: cyclic as Data }] }),
      ).kind,
    ).toBe('bad_message')
    expect(
      protocolError(() =>
        encodeMessage({ type: 'push', batch: 1, entries: [{ ...sale, data: (() => 1) as never }] }),
      ).kind,
    ).toBe('bad_message')
    expect(
      protocolError(() =>
        encodeMessage({
          type: 'push',
          batch: 1,
          entries: [{ ...sale, data: 'x'.repeat(ENTRY_DATA_BYTES_MAX + 1) }],
        }),
      ).kind,
    ).toBe('too_large')
  })
})

function flip(bytes: Uint8Array, at: number, bit: number): Uint8Array {
  const out = bytes.slice()
  if (out.length > 0) out[at] = (out[at] as number) ^ (1 << bit)
  return out
}

function overwrite(bytes: Uint8Array, at: number, byte: number): Uint8Array {
  const out = bytes.slice()
  if (out.length > 0) out[at] = byte
  return out
}
