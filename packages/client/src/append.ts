/**
 * The append path: the app's drafts become entries of this client and go into the outbox in
 * one client store write. Everything that can be checked without the database is checked
 * first, so the write stays short.
 *
 *   drafts ─► check (count, entity names, types, data, expect) ─► tenant
 *          ─► clientStore.append: allocate clientSeq, stamp the clock, validate, size ─► Appended
 *
 * Terms: a *draft* is what the app passes (`AppendDraft`); the *stamp* is the entry's hybrid
 * logical clock value (one clock per clientId).
 *
 * Invariants:
 * 1. A call appends all of its drafts or none (one write); when it throws, nothing was written.
 * 2. Bad input is a typed `ClientError`: `invalid` (entity name, data shape, `expect` on a
 *    fact, more than APPEND_MANY_ENTRIES_MAX drafts, the entity type's `validate`),
 *    `unknown_type`, `too_large` (data over ENTRY_DATA_BYTES_MAX, or a frame over
 *    FRAME_BYTES_MAX), `outbox_full` (OUTBOX_ENTRIES_MAX / OUTBOX_BYTES_MAX).
 * 3. Stamps of one clientId only increase: the clock is made once per clientId and restarted
 *    after a reissue.
 * 4. Entries carry the tenant known at the time: the option, the stored history's, the relay's
 *    welcome, or the token's claim; an append with none fails with `invalid`.
 * 5. A `corrects` naming an own entry that restore recovery moved (`outcome` is `reissued`)
 *    names the id it moved to: the app keeps the id `append` gave it, the log knows the new one.
 *    A move between the lookup and the write is seen in the write (the named entry waited in
 *    the outbox under another clientId than the current one) and the lookup runs again; a move
 *    after the write renames it (`reissue` rewrites the corrections of the records it moves).
 */
import type { Entry, EntityType } from '@ledgerline/core'
import { checkData, createHlcClock, isEntityName } from '@ledgerline/core'
import { encodeMessage, ENTRY_DATA_BYTES_MAX, isProtocolError } from '@ledgerline/protocol'
import type { AppendDraft } from './client-api.ts'
import type { Appended, ClientStore, LoadWanted } from './client-store.ts'
import { ClientError, fromLedgerError } from './errors.ts'
import {
  APPEND_MANY_ENTRIES_MAX,
  OUTBOX_BYTES_MAX,
  OUTBOX_ENTRIES_MAX,
  REISSUE_HOPS_MAX,
} from './limits.ts'

export interface AppenderOptions {
  readonly clientStore: Promise<Pick<ClientStore, 'append' | 'outcome'>>
  /** The entity type of an entity, or a `ClientError`. */
  readonly typeOf: (entity: string) => EntityType
  /** The tenant to stamp entries with (invariant 4). */
  readonly tenant: () => Promise<string | undefined>
  readonly now: () => number
}

export interface Appender {
  /**
   * Appends `drafts` (at least one) in one write, reading `loads` in it too (the entities the
   * caller primes); `at` is the local time it used.
   */
  append(
    drafts: readonly AppendDraft[],
    loads?: readonly LoadWanted[],
  ): Promise<{ appended: Appended; at: number }>
  /** The clientId changed (a reissue): the next append starts a new clock. */
  resetClock(): void
}

/**
 * @example
 * const appender = createAppender({ clientStore, typeOf, tenant: async () => 'acme', now })
 * const { appended } = await appender.append([{ entity: 'stock/a', kind: 'stock.moved', data }])
 */
export function createAppender(options: AppenderOptions): Appender {
  const { typeOf, now } = options
  let clock: ReturnType<typeof createHlcClock> | undefined
  let clockNode = ''

  return {
    async append(input, loads) {
      checkDrafts(input, typeOf)
      const clientStore = await options.clientStore
      const tenant = await options.tenant()
      if (tenant === undefined) {
        throw new ClientError(
          'invalid',
          'tenant unknown: pass options.tenant or use a token with a tenant claim',
        )
      }
      for (let attempt = 1; ; attempt++) {
        const { drafts, waiting } = await currentCorrects(input, clientStore)
        const at = now()
        try {
          const appended = await clientStore.append(
            (clientId, firstSeq) => {
              // Invariant 5: every outbox record has the current clientId, so an own entry that
              // waited under another one has moved since the lookup: look again.
              if (
                attempt < REISSUE_HOPS_MAX &&
                waiting.some((id) => !id.startsWith(`${clientId}-`))
              ) {
                throw MOVED_MEANWHILE
              }
              if (clock === undefined || clockNode !== clientId) {
                clock = createHlcClock(clientId, now)
                clockNode = clientId
              }
              const c = clock
              return drafts.map((d, i) => {
                const clientSeq = firstSeq + i
                const entry: Entry = {
                  id: `${clientId}-${clientSeq}`,
                  tenant,
                  entity: d.entity,
                  kind: d.kind,
                  data: d.data,
                  intent: d.intent ?? 'fact',
                  ...(d.expect === undefined ? {} : { expect: d.expect }),
                  ...(d.corrects === undefined ? {} : { corrects: d.corrects }),
                  clientId,
                  clientSeq,
                  hlc: c.tick(),
                  occurredAt: at,
                }
                // Validated once, by the client store, before it is written (pair assertion).
                const verdict = typeOf(entry.entity).validate?.(entry) ?? true
                if (verdict !== true)
                  throw new ClientError('invalid', `${entry.entity}: ${verdict}`)
                return entry
              })
            },
            { entriesMax: OUTBOX_ENTRIES_MAX, bytesMax: OUTBOX_BYTES_MAX },
            at,
            entryBytes,
            loads,
          )
          return { appended, at }
        } catch (error) {
          if (error === MOVED_MEANWHILE) continue
          throw fromLedgerError(error)
        }
      }
    },
    resetClock() {
      clock = undefined
    },
  }
}

/**
 * The encoded size of an entry on the wire (one push of it alone); refuses data over
 * `ENTRY_DATA_BYTES_MAX` with `too_large`.
 *
 * @example
 * entryBytes(entry) // 184
 */
export function entryBytes(entry: Entry): number {
  const bytes = encodedPushBytes(entry)
  if (bytes > ENTRY_DATA_BYTES_MAX) {
    const dataBytes = bytes - encodedPushBytes({ ...entry, data: null })
    if (dataBytes > ENTRY_DATA_BYTES_MAX) {
      throw new ClientError(
        'too_large',
        `entry data is ${dataBytes} bytes; at most ${ENTRY_DATA_BYTES_MAX} are allowed`,
      )
    }
  }
  return bytes
}

/** Thrown inside the write to redo the lookup of invariant 5 (nothing is written). */
const MOVED_MEANWHILE = new Error('an own entry named by corrects moved meanwhile')

/**
 * Invariant 5: drafts whose `corrects` names a moved own entry, renamed to where it went; and
 * the named ids still waiting in the outbox (a move after this lookup renames them).
 */
async function currentCorrects(
  drafts: readonly AppendDraft[],
  clientStore: Pick<ClientStore, 'outcome'>,
): Promise<{ drafts: readonly AppendDraft[]; waiting: readonly string[] }> {
  const waiting: string[] = []
  if (drafts.every((d) => d.corrects === undefined)) return { drafts, waiting }
  const out: AppendDraft[] = []
  for (const d of drafts) {
    if (d.corrects === undefined) {
      out.push(d)
      continue
    }
    let id = d.corrects
    let outcome = await clientStore.outcome(id)
    for (let hops = 0; outcome._tag === 'reissued' && hops < REISSUE_HOPS_MAX; hops++) {
      id = outcome.as
      outcome = await clientStore.outcome(id)
    }
    if (outcome._tag === 'outbox') waiting.push(id)
    out.push(id === d.corrects ? d : { ...d, corrects: id })
  }
  return { drafts: out, waiting }
}

/** Invariant 2, the part that needs no database. */
function checkDrafts(drafts: readonly AppendDraft[], typeOf: (entity: string) => unknown): void {
  if (drafts.length > APPEND_MANY_ENTRIES_MAX) {
    throw new ClientError(
      'invalid',
      `appendMany takes at most ${APPEND_MANY_ENTRIES_MAX} entries, got ${drafts.length}`,
    )
  }
  for (const d of drafts) {
    if (!isEntityName(d.entity))
      throw new ClientError('invalid', `'${String(d.entity)}' is not an entity name (type/id)`)
    typeOf(d.entity)
    try {
      checkData(d.data)
    } catch (error) {
      throw fromLedgerError(error)
    }
    if (d.expect !== undefined && d.intent !== 'request') {
      throw new ClientError('invalid', 'expect is only allowed on requests (intent: "request")')
    }
  }
}

/**
 * The size of a push of `entry` alone. The codec refuses a frame it would not send (one string
 * or binary over ENTRY_DATA_BYTES_MAX, a frame over FRAME_BYTES_MAX): that is the app's data
 * being too large (or unencodable), never a storage failure.
 */
function encodedPushBytes(entry: Entry): number {
  try {
    return encodeMessage({ type: 'push', batch: 0, entries: [entry] }).byteLength
  } catch (error) {
    if (!isProtocolError(error)) throw error
    throw new ClientError(error.kind === 'too_large' ? 'too_large' : 'invalid', error.message, {
      cause: error,
    })
  }
}
