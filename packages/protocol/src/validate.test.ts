// Goal: validateMessage checks every field of every message type and names the field it refuses,
// with `too_large` for limits a sender can split its way under and `bad_message` for the rest.
// Method: one valid message per type, then a table of single-field mutations, each checked for
// kind and path; plus checks that the result is a fresh copy holding only known fields.
import { describe, expect, it } from 'vitest'
import {
  ACK_CORRECTIONS_MAX,
  CREDIT_PAGES_MAX,
  PAGE_ENTRIES_MAX,
  PARTITIONS_MAX,
  SCOPE_PATTERNS_MAX,
} from './limits.ts'
import type { ProtocolError } from './protocol-error.ts'
import { isProtocolError } from './protocol-error.ts'
import { ACK_REFUSAL_CODES, DEFERRAL_CODES, validateMessage } from './validate.ts'

const CID = '3f1c0a9b8e7d6c5b4a39281706f5e4d3'
const entry = {
  id: `${CID}-1`,
  tenant: 'acme',
  entity: 'stock/s7:espresso-1kg',
  kind: 'stock.moved',
  data: { qty: -1 },
  intent: 'fact',
  clientId: CID,
  clientSeq: 1,
  hlc: `001732700000000:00000:${CID}`,
  occurredAt: 1,
}
const stored = { ...entry, version: 1, partition: 0, offset: 1, committedAt: 2 }
const appended = {
  id: entry.id,
  status: 'appended',
  version: 1,
  partition: 0,
  offset: 1,
  committedAt: 2,
  corrections: [],
}
const refused = {
  id: entry.id,
  status: 'refused',
  code: 'invariant',
  reason: 'nonNegative',
  head: 3,
}
const ref = {
  id: `${CID}-1~nonnegative~0`,
  entity: 'stock/s7:espresso-1kg',
  kind: 'stock.oversold',
  version: 2,
  partition: 0,
  offset: 2,
}
const idConflict = { id: entry.id, status: 'id_conflict', reason: 'other content' }
const deferred = {
  id: entry.id,
  status: 'deferred',
  code: 'unknown_type',
  reason: 'no type',
  retryAfterMs: 1000,
}
const storedResult = { id: entry.id, status: 'stored' }
const snapshot = {
  entity: 'stock/s7:espresso-1kg',
  foldKey: 'stock@1',
  version: 256,
  partition: 3,
  offset: 9000,
  committedAt: 2,
  state: { onHand: 4, lines: [1, 2] },
}
const valid = {
  hello: { type: 'hello', protocol: 1, token: 't', clientId: CID },
  welcome: {
    type: 'welcome',
    protocol: 1,
    tenant: 'acme',
    subject: 'till-1',
    grants: { read: ['*'], write: [], forward: ['order/*'] },
    role: 'head_office',
    log: { id: 'log-1', generation: 1 },
    limits: {
      pushEntriesMax: 500,
      pushBytesMax: 65_536,
      entryDataBytesMax: 1024,
      pushInFlightMax: 4,
    },
    partitions: 16,
    snapshots: true,
    clientSeqHigh: 0,
    serverTime: 1,
    expiresAt: 2,
  },
  push: { type: 'push', batch: 0, entries: [entry], subjects: { [CID]: 'till-1' } },
  ack: {
    type: 'ack',
    batch: 0,
    first: 0,
    results: [{ ...appended, corrections: [ref] }, refused, idConflict, deferred, storedResult],
    done: true,
  },
  subscribe: {
    type: 'subscribe',
    sub: 0,
    scope: ['stock/*'],
    cursors: { 0: 5 },
    credit: 0,
    bootstrap: { foldKeys: ['stock@1', 'order@2'], whole: [{ pattern: 'order/*', since: 9 }] },
  },
  snapshots: { type: 'snapshots', sub: 0, snapshots: [snapshot] },
  fetch: { type: 'fetch', req: 3, entity: 'stock/s7:espresso-1kg', before: 257 },
  fetched: {
    type: 'fetched',
    req: 3,
    entity: 'stock/s7:espresso-1kg',
    entries: [stored],
    done: true,
    dropped: 1,
  },
  entries: { type: 'entries', sub: 0, entries: [stored], cursors: {}, live: true },
  credit: { type: 'credit', sub: 0, pages: 1 },
  renew: { type: 'renew', token: 't2' },
  store: { type: 'store', sub: 1, entries: [entry], removed: [entry.id], reset: true },
  upstream: { type: 'upstream', connected: false, since: 3 },
  renewed: { type: 'renewed', expiresAt: 5, grants: { read: ['*'], write: [] } },
  ping: { type: 'ping', t: -1.5 },
  pong: { type: 'pong', t: 0 },
  error: { type: 'error', kind: 'internal', message: '', backoffMsMin: 0 },
} as const

function refusal(value: unknown): ProtocolError {
  try {
    validateMessage(value)
  } catch (error) {
    if (isProtocolError(error)) return error
    throw new Error(`expected a ProtocolError, got ${String(error)}`)
  }
  throw new Error('expected a ProtocolError, nothing was thrown')
}

describe('validateMessage', () => {
  it.each(Object.values(valid))('accepts a valid $type and returns a fresh copy', (message) => {
    const out = validateMessage(message)
    expect(out).toStrictEqual(message)
    expect(out).not.toBe(message)
  })

  it('keeps the log identity of a client_taken error (finding C of the simulation)', () => {
    const taken = {
      type: 'error',
      kind: 'client_taken',
      message: 'taken',
      backoffMsMin: 60_000,
      log: { id: 'log-1', generation: 2 },
    }
    expect(validateMessage(taken)).toStrictEqual(taken)
  })

  it('lists the decisions an ack may refuse with, and what it defers', () => {
    // unknown_type is not a decision: the relay is behind, so it defers (protocol 2).
    expect(ACK_REFUSAL_CODES).toEqual(['conflict', 'invariant', 'invalid', 'forbidden', 'seq_gap'])
    expect(DEFERRAL_CODES).toEqual(['unknown_type', 'clock_ahead'])
  })

  it('refuses an object whose prototype carries the fields', () => {
    const sneaky = Object.create({ t: 1 }) as object
    Object.assign(sneaky, { type: 'ping' })
    expect(refusal(sneaky).message).toBe('message: must be a plain map')
    const bare = Object.assign(Object.create(null) as object, { type: 'ping' })
    expect(refusal(bare).message).toBe('ping.t: must be a finite number')
  })

  const many = <T>(n: number, item: T): T[] => Array.from({ length: n }, () => item)
  it.each([
    [{ ...valid.hello, protocol: 0 }, 'bad_message', 'hello.protocol: must be an integer in 1..'],
    [{ ...valid.hello, token: '' }, 'bad_message', 'hello.token: must have at least 1 character'],
    [{ ...valid.hello, clientId: CID.toUpperCase() }, 'bad_message', 'hello.clientId'],
    [{ ...valid.welcome, tenant: 'a b' }, 'bad_message', "welcome.tenant: tenant 'a b'"],
    [{ ...valid.welcome, grants: [] }, 'bad_message', 'welcome.grants: must be a map'],
    [
      { ...valid.welcome, grants: { read: ['a b'], write: [] } },
      'bad_message',
      'welcome.grants.read[0]: pattern',
    ],
    [
      { ...valid.welcome, grants: { read: [] } },
      'bad_message',
      'welcome.grants.write: must be an array',
    ],
    [
      { ...valid.welcome, partitions: 0 },
      'bad_message',
      'welcome.partitions: partitions must be an integer in 1..1024',
    ],
    [{ ...valid.welcome, clientSeqHigh: -1 }, 'bad_message', 'welcome.clientSeqHigh'],
    [
      { ...valid.welcome, expiresAt: -1 },
      'bad_message',
      'welcome.expiresAt: must be ms since the epoch',
    ],
    [{ ...valid.push, batch: 1.5 }, 'bad_message', 'push.batch'],
    [{ ...valid.push, entries: {} }, 'bad_message', 'push.entries: must be an array'],
    [{ ...valid.push, entries: [entry, 7] }, 'bad_message', 'push.entries[1]: must be a map'],
    [
      { ...valid.push, entries: [{ ...entry, clientSeq: 2 }] },
      'bad_message',
      "push.entries[0]: entry id must be '<clientId>-<clientSeq>'",
    ],
    [
      { ...valid.push, entries: [{ ...entry, entity: 'nope' }] },
      'bad_message',
      'push.entries[0]: entity',
    ],
    [
      { ...valid.push, entries: [{ ...entry, data: { x: 1n } }] },
      'bad_message',
      'push.entries[0]: entry data.x must be plain data',
    ],
    [
      { ...valid.ack, results: [{ ...appended, id: 'x' }] },
      'bad_message',
      'ack.results[0].id: must be an entry id',
    ],
    [
      { ...valid.ack, results: [{ ...appended, status: 'lost' }] },
      'bad_message',
      'ack.results[0].status',
    ],
    [
      { ...valid.ack, results: [{ ...appended, partition: PARTITIONS_MAX }] },
      'bad_message',
      'ack.results[0].partition',
    ],
    [
      { ...valid.ack, results: [{ ...appended, corrections: [{ ...ref, version: 0 }] }] },
      'bad_message',
      'ack.results[0].corrections[0].version',
    ],
    [
      { ...valid.ack, results: [{ ...appended, corrections: [{ ...ref, entity: 'x' }] }] },
      'bad_message',
      'ack.results[0].corrections[0].entity',
    ],
    [
      {
        ...valid.ack,
        results: [{ ...appended, corrections: many(ACK_CORRECTIONS_MAX + 1, ref) }],
      },
      'too_large',
      'ack.results[0].corrections: has 17 items, over ACK_CORRECTIONS_MAX',
    ],
    [
      { ...valid.ack, results: [{ ...refused, code: 'nope' }] },
      'bad_message',
      'ack.results[0].code: must be one of conflict',
    ],
    [{ ...valid.ack, results: [{ ...refused, head: -1 }] }, 'bad_message', 'ack.results[0].head'],
    [
      { ...valid.ack, results: [{ ...refused, code: 'unknown_type' }] },
      'bad_message',
      'ack.results[0].code: must be one of conflict',
    ],
    [
      { ...valid.ack, results: [{ ...deferred, code: 'conflict' }] },
      'bad_message',
      'ack.results[0].code: must be one of unknown_type, clock_ahead',
    ],
    [
      { ...valid.ack, results: [{ ...deferred, retryAfterMs: -1 }] },
      'bad_message',
      'ack.results[0].retryAfterMs',
    ],
    [{ ...valid.ack, results: [{ ...idConflict, reason: 3 }] }, 'bad_message', 'reason'],
    [{ ...valid.ack, first: -1 }, 'bad_message', 'ack.first'],
    [{ ...valid.ack, first: 499 }, 'bad_message', 'ack.results: first + results'],
    [{ ...valid.ack, done: 'yes' }, 'bad_message', 'ack.done: must be a boolean'],
    [{ ...valid.welcome, log: { id: 'a b', generation: 1 } }, 'bad_message', 'welcome.log.id'],
    [
      { ...valid.welcome, log: { id: 'a', generation: 0 } },
      'bad_message',
      'welcome.log.generation',
    ],
    [{ ...valid.welcome, subject: '' }, 'bad_message', 'welcome.subject'],
    [
      { ...valid.welcome, limits: { ...valid.welcome.limits, pushEntriesMax: 501 } },
      'bad_message',
      'welcome.limits.pushEntriesMax',
    ],
    [{ ...valid.renew, token: '' }, 'bad_message', 'renew.token'],
    [{ ...valid.welcome, role: 'edge' }, 'bad_message', 'welcome.role: must be one of'],
    [
      { ...valid.welcome, upstream: { connected: 'yes', since: 1 } },
      'bad_message',
      'welcome.upstream.connected',
    ],
    [
      { ...valid.welcome, grants: { read: [], write: [], forward: ['a b'] } },
      'bad_message',
      'welcome.grants.forward[0]',
    ],
    [{ ...valid.push, subjects: { nope: 'x' } }, 'bad_message', 'push.subjects.nope'],
    [{ ...valid.push, subjects: { [CID]: '' } }, 'bad_message', `push.subjects.${CID}`],
    [{ ...valid.store, removed: ['x'] }, 'bad_message', 'store.removed[0]: must be an entry id'],
    [{ ...valid.store, entries: [{ ...entry, clientSeq: 0 }] }, 'bad_message', 'store.entries[0]'],
    [{ ...valid.store, reset: 0 }, 'bad_message', 'store.reset: must be a boolean'],
    [{ ...valid.upstream, since: -1 }, 'bad_message', 'upstream.since'],
    [{ ...valid.renewed, grants: [] }, 'bad_message', 'renewed.grants: must be a map'],
    [
      { ...valid.subscribe, scope: [] },
      'bad_message',
      'subscribe.scope: must have at least 1 pattern',
    ],
    [
      { ...valid.subscribe, scope: many(SCOPE_PATTERNS_MAX + 1, '*') },
      'too_large',
      'subscribe.scope: has 65 items, over SCOPE_PATTERNS_MAX',
    ],
    [{ ...valid.subscribe, cursors: [] }, 'bad_message', 'subscribe.cursors: must be a map'],
    [
      { ...valid.subscribe, cursors: { '01': 1 } },
      'bad_message',
      'subscribe.cursors.01: key must be a partition number',
    ],
    [
      { ...valid.subscribe, cursors: { [PARTITIONS_MAX]: 1 } },
      'bad_message',
      `subscribe.cursors.${PARTITIONS_MAX}: key`,
    ],
    [
      { ...valid.subscribe, cursors: { 3: -1 } },
      'bad_message',
      'subscribe.cursors.3: must be an integer',
    ],
    [
      { ...valid.subscribe, credit: CREDIT_PAGES_MAX + 1 },
      'bad_message',
      'subscribe.credit: must be an integer in 0..64',
    ],
    [{ ...valid.entries, entries: [entry] }, 'bad_message', 'entries.entries[0]: entry version'],
    [
      { ...valid.entries, entries: many(PAGE_ENTRIES_MAX + 1, stored) },
      'too_large',
      'entries.entries: has 1001 items, over PAGE_ENTRIES_MAX',
    ],
    [{ ...valid.entries, live: 1 }, 'bad_message', 'entries.live: must be a boolean'],
    [{ ...valid.credit, pages: 0 }, 'bad_message', 'credit.pages: must be an integer in 1..64'],
    [
      { ...valid.subscribe, bootstrap: { foldKeys: ['stock'], whole: [] } },
      'bad_message',
      "subscribe.bootstrap.foldKeys[0]: must be a fold key, 'type@version'",
    ],
    [
      { ...valid.subscribe, bootstrap: { foldKeys: ['stock@0'], whole: [] } },
      'bad_message',
      'subscribe.bootstrap.foldKeys[0]',
    ],
    [
      { ...valid.subscribe, bootstrap: { foldKeys: many(257, 'stock@1'), whole: [] } },
      'too_large',
      'over BOOTSTRAP_FOLD_KEYS_MAX',
    ],
    [
      { ...valid.subscribe, bootstrap: { foldKeys: [], whole: [{ pattern: 'a b', since: 1 }] } },
      'bad_message',
      'subscribe.bootstrap.whole[0].pattern',
    ],
    [
      { ...valid.snapshots, snapshots: [{ ...snapshot, state: { x: 1n } }] },
      'bad_message',
      'snapshots.snapshots[0].state',
    ],
    [
      { ...valid.snapshots, snapshots: [{ ...snapshot, state: 'x'.repeat(300 * 1024) }] },
      'too_large',
      'over SNAPSHOT_STATE_BYTES_MAX',
    ],
    [
      { ...valid.snapshots, snapshots: [{ ...snapshot, version: 0 }] },
      'bad_message',
      'snapshots.snapshots[0].version',
    ],
    [{ ...valid.fetch, entity: 'nope' }, 'bad_message', 'fetch.entity'],
    [{ ...valid.fetch, before: 0 }, 'bad_message', 'fetch.before'],
    [{ ...valid.fetched, entries: [entry] }, 'bad_message', 'fetched.entries[0]: entry version'],
    [{ ...valid.fetched, dropped: 0 }, 'bad_message', 'fetched.dropped'],
    [{ ...valid.ping, t: '1' }, 'bad_message', 'ping.t: must be a finite number'],
    [{ type: 'pong' }, 'bad_message', 'pong.t: must be a finite number'],
    [{ ...valid.error, kind: 'oops' }, 'bad_message', 'error.kind: must be an error kind'],
    [{ ...valid.error, backoffMsMin: -5 }, 'bad_message', 'error.backoffMsMin'],
    [{ ...valid.error, message: null }, 'bad_message', 'error.message: must be a string'],
    [{ ...valid.error, log: { id: 'a', generation: 0 } }, 'bad_message', 'error.log.generation'],
  ])('refuses mutation %# with %s', (message, kind, text) => {
    const error = refusal(message)
    expect(error.kind).toBe(kind)
    expect(error.message).toContain(text)
  })
})
