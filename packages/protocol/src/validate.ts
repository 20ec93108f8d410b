/**
 * Validation of decoded wire messages: every field of every message, by hand-written checks
 * (no schema library: the messages are few and the checks must name fields precisely). This
 * file holds the message validators and the parts they share (entries, ack results, grants);
 * the checkers of single fields are in `validate-fields.ts`.
 *
 * Terms: *path* is where a field sits in the message (`push.entries[3].clientSeq`); every
 * refusal names it.
 *
 * Invariants:
 * 1. `validateMessage` returns a fresh object holding exactly the known fields of the message,
 *    or throws `ProtocolError`. Unknown fields are dropped, at the top level and in entries,
 *    results and grants: a newer peer may add optional fields without a protocol version bump,
 *    and nothing unvalidated ever reaches a store or an app. Fields are read as
 *    `validate-fields.ts` reads them (its invariant 1: own properties of plain maps only).
 * 2. Kinds: `too_large` when a protocol limit that splitting would satisfy is passed (entries
 *    per push or page, entry data bytes, scope patterns, cursors, corrections per ack result,
 *    token and message length); `bad_message` for every other wrong field, including the
 *    limits of `core` (entity names, kinds, ids), which a client cannot split its way around.
 * 3. Entries are checked by `core`'s `validateEntry` / `validateStoredEntry`; their `data` is
 *    copied, so byte arrays never alias the frame they came in.
 */
import type { Data, Entry, StoredEntry } from '@ledgerline/core'
import {
  CLIENT_SEQ_MAX,
  checkKind,
  checkPartitions,
  checkTenant,
  isClientId,
  isEntryId,
  parseEntityName,
  validateEntry,
  validateStoredEntry,
} from '@ledgerline/core'
import { isErrorKind } from './error-kind.ts'
import {
  ACK_CORRECTIONS_MAX,
  CREDIT_PAGES_MAX,
  ENTRY_DATA_BYTES_MAX,
  FRAME_BYTES_MAX,
  HELLO_CLIENT_IDS_MAX,
  LOG_ID_LENGTH_MAX,
  MESSAGE_LENGTH_MAX,
  PAGE_ENTRIES_MAX,
  PARTITIONS_MAX,
  PUSH_ENTRIES_MAX,
  PUSH_IN_FLIGHT_MAX,
  SNAPSHOTS_PAGE_MAX,
  SUBJECT_LENGTH_MAX,
  TOKEN_LENGTH_MAX,
} from './limits.ts'
import type {
  AckRefusalCode,
  AckResult,
  CorrectionRef,
  DeferralCode,
  Grants,
  LogIdentity,
  Message,
  MessageType,
  RelayLimitsAdvertised,
  RelayRole,
  UpstreamState,
} from './messages.ts'
import { MESSAGE_TYPES } from './messages.ts'
import { ProtocolError } from './protocol-error.ts'
import type { Fields } from './validate-fields.ts'
import { bootstrapRequest, entityName, ledgerSnapshot } from './validate-snapshots.ts'
import {
  anId,
  bad,
  boolean,
  clientId,
  core,
  cursors,
  finite,
  integer,
  list,
  oneOf,
  own,
  patterns,
  record,
  text,
  time,
  tooMany,
  entryDataBytes,
} from './validate-fields.ts'

export { entryDataBytes } from './validate-fields.ts'

/** Refusal codes an ack may carry: the model's decisions, plus the relay's own. */
export const ACK_REFUSAL_CODES = Object.keys({
  conflict: true,
  invariant: true,
  invalid: true,
  forbidden: true,
  seq_gap: true,
} satisfies Record<AckRefusalCode, true>) as readonly AckRefusalCode[]

/** Codes of a `deferred` ack result. */
export const DEFERRAL_CODES = Object.keys({
  unknown_type: true,
  clock_ahead: true,
} satisfies Record<DeferralCode, true>) as readonly DeferralCode[]

/** Roles a relay may say it has in `welcome`. */
export const RELAY_ROLES = Object.keys({
  head_office: true,
  hub: true,
} satisfies Record<RelayRole, true>) as readonly RelayRole[]

const LOG_ID_RE = /^[A-Za-z0-9_-]+$/

/**
 * Checks that `value` (a decoded frame) is a valid message and returns a clean copy of it.
 * Throws `ProtocolError` naming the first bad field.
 *
 * @example
 * validateMessage({ type: 'ping', t: 1 }) // { type: 'ping', t: 1 }
 */
export function validateMessage(value: unknown): Message {
  const m = record(value, 'message')
  const type = m.type
  if (typeof type !== 'string' || !(MESSAGE_TYPES as readonly string[]).includes(type)) {
    throw bad('message.type', `must be one of ${MESSAGE_TYPES.join(', ')}`)
  }
  return VALIDATORS[type as MessageType](m, type)
}

type Validator = (m: Fields, path: string) => Message

const VALIDATORS: Readonly<Record<MessageType, Validator>> = {
  hello: (m, p) => ({
    type: 'hello',
    protocol: integer(m, 'protocol', p, 1, Number.MAX_SAFE_INTEGER),
    token: text(m, 'token', p, 1, TOKEN_LENGTH_MAX),
    clientId: clientId(m, p),
    ...(own(m, 'clientIds') === undefined
      ? {}
      : {
          clientIds: list(m, 'clientIds', p, HELLO_CLIENT_IDS_MAX, 'HELLO_CLIENT_IDS_MAX', anId),
        }),
  }),
  welcome: (m, p) => ({
    type: 'welcome',
    protocol: integer(m, 'protocol', p, 1, Number.MAX_SAFE_INTEGER),
    tenant: core(`${p}.tenant`, () => checkTenant(own(m, 'tenant'))),
    subject: text(m, 'subject', p, 1, SUBJECT_LENGTH_MAX),
    grants: grants(own(m, 'grants'), `${p}.grants`),
    // Absent from relays of protocol 2, which are all head office.
    role: own(m, 'role') === undefined ? 'head_office' : oneOf(m, 'role', p, RELAY_ROLES),
    ...(own(m, 'upstream') === undefined
      ? {}
      : { upstream: upstreamState(own(m, 'upstream'), `${p}.upstream`) }),
    log: logIdentity(own(m, 'log'), `${p}.log`),
    limits: advertisedLimits(own(m, 'limits'), `${p}.limits`),
    partitions: core(`${p}.partitions`, () => checkPartitions(own(m, 'partitions'))),
    ...(own(m, 'snapshots') === undefined ? {} : { snapshots: boolean(m, 'snapshots', p) }),
    clientSeqHigh: integer(m, 'clientSeqHigh', p, 0, CLIENT_SEQ_MAX),
    ...(own(m, 'clientSeqHighs') === undefined
      ? {}
      : {
          clientSeqHighs: list(
            m,
            'clientSeqHighs',
            p,
            HELLO_CLIENT_IDS_MAX,
            'HELLO_CLIENT_IDS_MAX',
            (v, at) => {
              const f = record(v, at)
              return { clientId: clientId(f, at), high: integer(f, 'high', at, 0, CLIENT_SEQ_MAX) }
            },
          ),
        }),
    serverTime: time(m, 'serverTime', p),
    expiresAt: time(m, 'expiresAt', p),
  }),
  push: (m, p) => ({
    type: 'push',
    batch: integer(m, 'batch', p, 0, Number.MAX_SAFE_INTEGER),
    entries: list(m, 'entries', p, PUSH_ENTRIES_MAX, 'PUSH_ENTRIES_MAX', entry),
    ...(own(m, 'subjects') === undefined
      ? {}
      : { subjects: subjects(own(m, 'subjects'), `${p}.subjects`) }),
  }),
  ack: (m, p) => {
    const first = integer(m, 'first', p, 0, PUSH_ENTRIES_MAX - 1)
    const results = list(m, 'results', p, PUSH_ENTRIES_MAX, 'PUSH_ENTRIES_MAX', ackResult)
    if (first + results.length > PUSH_ENTRIES_MAX) {
      throw bad(`${p}.results`, `first + results must be at most PUSH_ENTRIES_MAX`)
    }
    return {
      type: 'ack',
      batch: integer(m, 'batch', p, 0, Number.MAX_SAFE_INTEGER),
      first,
      results,
      done: boolean(m, 'done', p),
    }
  },
  subscribe: (m, p) => ({
    type: 'subscribe',
    sub: integer(m, 'sub', p, 0, Number.MAX_SAFE_INTEGER),
    scope: patterns(own(m, 'scope'), `${p}.scope`, 1),
    cursors: cursors(own(m, 'cursors'), `${p}.cursors`),
    credit: integer(m, 'credit', p, 0, CREDIT_PAGES_MAX),
    ...(own(m, 'bootstrap') === undefined
      ? {}
      : { bootstrap: bootstrapRequest(own(m, 'bootstrap'), `${p}.bootstrap`) }),
  }),
  snapshots: (m, p) => ({
    type: 'snapshots',
    sub: integer(m, 'sub', p, 0, Number.MAX_SAFE_INTEGER),
    snapshots: list(m, 'snapshots', p, SNAPSHOTS_PAGE_MAX, 'SNAPSHOTS_PAGE_MAX', ledgerSnapshot),
  }),
  fetch: (m, p) => ({
    type: 'fetch',
    req: integer(m, 'req', p, 0, Number.MAX_SAFE_INTEGER),
    entity: entityName(m, p),
    before: integer(m, 'before', p, 1, Number.MAX_SAFE_INTEGER),
  }),
  fetched: (m, p) => ({
    type: 'fetched',
    req: integer(m, 'req', p, 0, Number.MAX_SAFE_INTEGER),
    entity: entityName(m, p),
    entries: list(m, 'entries', p, PAGE_ENTRIES_MAX, 'PAGE_ENTRIES_MAX', storedEntry),
    done: boolean(m, 'done', p),
    ...(own(m, 'dropped') === undefined
      ? {}
      : { dropped: integer(m, 'dropped', p, 1, Number.MAX_SAFE_INTEGER) }),
  }),
  entries: (m, p) => ({
    type: 'entries',
    sub: integer(m, 'sub', p, 0, Number.MAX_SAFE_INTEGER),
    entries: list(m, 'entries', p, PAGE_ENTRIES_MAX, 'PAGE_ENTRIES_MAX', storedEntry),
    cursors: cursors(own(m, 'cursors'), `${p}.cursors`),
    live: boolean(m, 'live', p),
  }),
  credit: (m, p) => ({
    type: 'credit',
    sub: integer(m, 'sub', p, 0, Number.MAX_SAFE_INTEGER),
    pages: integer(m, 'pages', p, 1, CREDIT_PAGES_MAX),
  }),
  renew: (m, p) => ({ type: 'renew', token: text(m, 'token', p, 1, TOKEN_LENGTH_MAX) }),
  renewed: (m, p) => ({
    type: 'renewed',
    expiresAt: time(m, 'expiresAt', p),
    grants: grants(own(m, 'grants'), `${p}.grants`),
  }),
  store: (m, p) => ({
    type: 'store',
    sub: integer(m, 'sub', p, 0, Number.MAX_SAFE_INTEGER),
    entries: list(m, 'entries', p, PAGE_ENTRIES_MAX, 'PAGE_ENTRIES_MAX', entry),
    removed: list(m, 'removed', p, PAGE_ENTRIES_MAX, 'PAGE_ENTRIES_MAX', (v, at) => {
      if (!isEntryId(v)) throw bad(at, 'must be an entry id')
      return v
    }),
    reset: boolean(m, 'reset', p),
  }),
  upstream: (m, p) => ({ type: 'upstream', ...upstreamState(m, p) }),
  ping: (m, p) => ({ type: 'ping', t: finite(m, 't', p) }),
  pong: (m, p) => ({ type: 'pong', t: finite(m, 't', p) }),
  error: (m, p) => {
    const kind = own(m, 'kind')
    if (!isErrorKind(kind)) throw bad(`${p}.kind`, 'must be an error kind of error-kind.ts')
    return {
      type: 'error',
      kind,
      message: text(m, 'message', p, 0, MESSAGE_LENGTH_MAX),
      backoffMsMin: integer(m, 'backoffMsMin', p, 0, Number.MAX_SAFE_INTEGER),
      ...(own(m, 'log') === undefined ? {} : { log: logIdentity(own(m, 'log'), `${p}.log`) }),
    }
  },
}

function entry(value: unknown, path: string): Entry {
  return cleanEntry(
    core(path, () => validateEntry(record(value, path))),
    path,
  )
}

function storedEntry(value: unknown, path: string): StoredEntry {
  const e = core(path, () => validateStoredEntry(record(value, path)))
  return {
    ...cleanEntry(e, path),
    version: e.version,
    partition: e.partition,
    offset: e.offset,
    committedAt: e.committedAt,
  }
}

// Exactly the fields of `Entry`, in one order, optional ones only when present.
function cleanEntry(e: Entry, path: string): Entry {
  const bytes = entryDataBytes(e.data)
  if (bytes > ENTRY_DATA_BYTES_MAX) {
    throw new ProtocolError(
      'too_large',
      `${path}.data: is ${bytes} bytes encoded, over ENTRY_DATA_BYTES_MAX (${ENTRY_DATA_BYTES_MAX})`,
    )
  }
  return {
    id: e.id,
    tenant: e.tenant,
    entity: e.entity,
    kind: e.kind,
    data: copyData(e.data),
    intent: e.intent,
    ...(e.expect === undefined ? {} : { expect: e.expect }),
    ...(e.corrects === undefined ? {} : { corrects: e.corrects }),
    ...(e.origin === undefined ? {} : { origin: e.origin }),
    clientId: e.clientId,
    clientSeq: e.clientSeq,
    hlc: e.hlc,
    occurredAt: e.occurredAt,
  }
}

function ackResult(value: unknown, path: string): AckResult {
  const r = record(value, path)
  const id = own(r, 'id')
  if (!isEntryId(id)) throw bad(`${path}.id`, 'must be an entry id')
  const status = own(r, 'status')
  switch (status) {
    case 'appended':
    case 'duplicate':
      return {
        id,
        status,
        ...position(r, path),
        committedAt: time(r, 'committedAt', path),
        corrections: list(
          r,
          'corrections',
          path,
          ACK_CORRECTIONS_MAX,
          'ACK_CORRECTIONS_MAX',
          correctionRef,
        ),
      }
    case 'refused':
      return {
        id,
        status,
        code: oneOf(r, 'code', path, ACK_REFUSAL_CODES),
        reason: text(r, 'reason', path, 0, MESSAGE_LENGTH_MAX),
        head: integer(r, 'head', path, 0, Number.MAX_SAFE_INTEGER),
      }
    case 'stored':
      return { id, status }
    case 'id_conflict':
      return { id, status, reason: text(r, 'reason', path, 0, MESSAGE_LENGTH_MAX) }
    case 'deferred':
      return {
        id,
        status,
        code: oneOf(r, 'code', path, DEFERRAL_CODES),
        reason: text(r, 'reason', path, 0, MESSAGE_LENGTH_MAX),
        retryAfterMs: integer(r, 'retryAfterMs', path, 0, Number.MAX_SAFE_INTEGER),
      }
    default:
      throw bad(
        `${path}.status`,
        "must be 'appended', 'duplicate', 'refused', 'stored', 'id_conflict' or 'deferred'",
      )
  }
}

function correctionRef(value: unknown, path: string): CorrectionRef {
  const r = record(value, path)
  const id = own(r, 'id')
  if (!isEntryId(id)) throw bad(`${path}.id`, 'must be an entry id')
  return {
    id,
    entity: core(`${path}.entity`, () => {
      const entity = own(r, 'entity')
      parseEntityName(entity)
      return entity as string
    }),
    kind: core(`${path}.kind`, () => checkKind(own(r, 'kind'))),
    ...position(r, path),
  }
}

function position(r: Fields, path: string): { version: number; partition: number; offset: number } {
  return {
    version: integer(r, 'version', path, 1, Number.MAX_SAFE_INTEGER),
    partition: integer(r, 'partition', path, 0, PARTITIONS_MAX - 1),
    offset: integer(r, 'offset', path, 1, Number.MAX_SAFE_INTEGER),
  }
}

function logIdentity(value: unknown, path: string): LogIdentity {
  const l = record(value, path)
  const id = text(l, 'id', path, 1, LOG_ID_LENGTH_MAX)
  if (!LOG_ID_RE.test(id)) throw bad(`${path}.id`, 'must be letters, digits, _ or -')
  return { id, generation: integer(l, 'generation', path, 1, Number.MAX_SAFE_INTEGER) }
}

function advertisedLimits(value: unknown, path: string): RelayLimitsAdvertised {
  const l = record(value, path)
  return {
    pushEntriesMax: integer(l, 'pushEntriesMax', path, 1, PUSH_ENTRIES_MAX),
    pushBytesMax: integer(l, 'pushBytesMax', path, 1024, FRAME_BYTES_MAX),
    entryDataBytesMax: integer(l, 'entryDataBytesMax', path, 1, ENTRY_DATA_BYTES_MAX),
    pushInFlightMax: integer(l, 'pushInFlightMax', path, 1, PUSH_IN_FLIGHT_MAX),
  }
}

function grants(value: unknown, path: string): Grants {
  const g = record(value, path)
  return {
    read: patterns(own(g, 'read'), `${path}.read`, 0),
    write: patterns(own(g, 'write'), `${path}.write`, 0),
    ...(own(g, 'forward') === undefined
      ? {}
      : { forward: patterns(own(g, 'forward'), `${path}.forward`, 0) }),
  }
}

function upstreamState(value: unknown, path: string): UpstreamState {
  const u = record(value, path)
  return { connected: boolean(u, 'connected', path), since: time(u, 'since', path) }
}

// clientId → token subject, one per distinct client of a push (so at most PUSH_ENTRIES_MAX).
function subjects(value: unknown, path: string): Record<string, string> {
  const s = record(value, path)
  const keys = Object.keys(s)
  if (keys.length > PUSH_ENTRIES_MAX) {
    throw tooMany(path, keys.length, PUSH_ENTRIES_MAX, 'PUSH_ENTRIES_MAX')
  }
  const out: Record<string, string> = {}
  for (const key of keys) {
    if (!isClientId(key)) throw bad(`${path}.${String(key).slice(0, 40)}`, 'key must be a clientId')
    out[key] = text(s, key, path, 1, SUBJECT_LENGTH_MAX)
  }
  return out
}

function copyData(value: Data): Data {
  if (value instanceof Uint8Array) return value.slice()
  if (Array.isArray(value)) return value.map(copyData)
  if (typeof value === 'object' && value !== null) {
    const out: Record<string, Data> = {}
    // `__proto__` never gets here: the decoder and `checkData` refuse it as a key.
    for (const [key, item] of Object.entries(value)) out[key] = copyData(item)
    return out
  }
  return value
}
