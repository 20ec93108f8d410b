/**
 * THE ORACLE: a small reference model of the server log's write decision, written apart from
 * the log's planner (`@ledgerline/log` `append-plan.ts`) and every store, from the guarantees
 * of `log-store.ts` alone. The simulation hands it every `append` call a real store answered,
 * in commit order; it predicts each result from its own state and reports every disagreement,
 * entry by entry. At the end its log must equal the store's, entry for entry.
 *
 * Terms: the oracle's *state* is what a log that kept every guarantee would hold: per client
 * the high-water mark, per id the first result and the content it was decided with, per entity
 * its version and folded state, per partition its entries.
 *
 * Rules it holds the store to (numbers of `log-store.ts`, protocol 2):
 * - 11, devices bound to subjects: the first item of a clientId that uses up a clientSeq binds
 *   it to the call's subject; an item of a clientId bound to another subject is `client_taken`,
 *   nothing recorded.
 * - 5, permanent dedupe, by id AND content: a resend with the same content gets its original
 *   result (`duplicate` of an append, the same refusal); other content under a decided id is
 *   `id_conflict`, nothing recorded.
 * - 6, gap-free clientSeq: clientSeq = high + 1, else `seq_gap`, not recorded.
 * - 10, deferrals: an entry whose clock is more than `ENTRY_CLOCK_SKEW_MS_MAX` ahead of the
 *   log's (`clock_ahead`), of a type the schema lacks (`unknown_type`), or whose `corrects`
 *   names a deferred entry is `deferred`: it uses up its clientSeq, and a resend with the same
 *   content is decided again from scratch.
 * - 7, write semantics: the relay's refusal (`forbidden`) and refused requests are recorded;
 *   a client's `corrects` must name an entry of the log the pusher may write (else `invalid`);
 *   a fact whose type is known is always appended, with the corrections its type's `correct`
 *   makes when an invariant breaks (one `ledger.correction_failed` when one is too large).
 * - 12, an ack names the corrections the pusher may read, by id.
 * - 3, 4: versions are the entity's + 1, offsets the partition's + 1, in decision order.
 * - 5 across moves (issue 14): an entry with an `origin` (moved by restore recovery), or
 *   without one (its own id taken as the origin: an original arriving after its moved copy),
 *   is a `duplicate` of the first other client entry in commit order that is that origin or
 *   carries it,
 *   has the same content apart from numbering (id, clientId, clientSeq, corrects, origin), and
 *   whose clientId is bound to the pusher's subject or to no one; it uses up its clientSeq and
 *   records nothing, so a clientSeq at or below the mark with nothing recorded was used by such
 *   a copy: a resend is answered the same, another entry under it is `id_conflict`.
 *
 * Invariants:
 * 1. The oracle never looks at the store beyond the results it is checking.
 * 2. After a disagreement it goes on from its own prediction, so one bug is reported where it
 *    happens, and what follows from it is reported as well (at most `SIM_VIOLATIONS_KEPT_MAX`).
 */
import type { Entry, Schema } from '@ledgerline/core'
import {
  buildCorrections,
  checkInvariants,
  correctionId,
  ENTRY_CLOCK_SKEW_MS_MAX,
  matchesAny,
  partitionOf,
} from '@ledgerline/core'
import type { AppendItem, AppendResult, Pusher } from '@ledgerline/log'
import { subjectFor } from '@ledgerline/log'
import { ENTRY_DATA_BYTES_MAX, entryDataBytes } from '@ledgerline/protocol'
import { contentKey, fullKey } from './content.ts'
import { SIM_VIOLATIONS_KEPT_MAX } from './limits.ts'
import type {
  Appended,
  OracleEntry,
  OracleRefusal,
  OracleStateData,
  Prediction,
} from './oracle-state.ts'
import { emptyState, recoveryKey, resultOfPlaced } from './oracle-state.ts'

export type { OracleEntry, OracleRefusal } from './oracle-state.ts'
export { oracleEntryOf } from './oracle-state.ts'

export interface LogOracle {
  /** Checks the results a store gave for one call (invariant 1), then takes its predictions. */
  check(
    tenant: string,
    items: readonly AppendItem[],
    pusher: Pusher | undefined,
    results: readonly AppendResult[],
  ): void
  /** The relay now decides with this schema (an upgrade, or a rollback). */
  setSchema(schema: Schema | undefined): void
  /** A copy of the state, to go back to when the log is restored from a backup. */
  save(): OracleState
  load(state: OracleState): void
  /** Per partition, what the log must hold, in offset order. */
  log(): readonly (readonly OracleEntry[])[]
  refusals(): readonly OracleRefusal[]
  /**
   * What the log decided under `id` so far: appended, refused, deferred (not final), a copy of
   * an entry it holds (answered duplicate), or nothing.
   */
  decision(tenant: string, id: string): 'appended' | 'refused' | 'deferred' | 'copy' | undefined
  /** Ids of copies the log answered duplicate (their clientSeqs are used up, nothing written). */
  copies(tenant: string): readonly string[]
  /** Whether the log refused this very entry (its id with its content, `content.ts`). */
  refused(tenant: string, e: Entry): boolean
  readonly disagreements: number
  /** The first disagreements, as messages. */
  readonly messages: readonly string[]
  readonly callsChecked: number
}

export type OracleState = unknown

/**
 * @example
 * const oracle = createLogOracle(schema, 4)
 * const results = await store.append(tenant, items)
 * oracle.check(tenant, items, results)
 */
export function createLogOracle(
  schema: Schema | undefined,
  partitions: number,
  /** The log's clock (what the store decides `clock_ahead` against). */
  now: () => number,
): LogOracle {
  let current = schema
  let s = emptyState(partitions)
  const messages: string[] = []
  let disagreements = 0
  let callsChecked = 0
  /** The read grants of the call being checked (rule 12). */
  let readGrants: readonly string[] = ['*']
  const disagree = (text: string) => {
    disagreements++
    if (messages.length < SIM_VIOLATIONS_KEPT_MAX) messages.push(text)
  }

  const predict = (
    tenant: string,
    item: AppendItem,
    pusher: Pusher | undefined,
    committedAt: number,
  ): Prediction => {
    const e = item.entry
    const client = `${tenant}\u0000${e.clientId}`
    const bound = s.subjects.get(client)
    if (pusher !== undefined && bound !== undefined && bound !== pusher.subject) {
      return { status: 'client_taken' }
    }
    const seen = s.decided.get(`${tenant}\u0000${e.id}`)
    const high = s.highs.get(client) ?? 0
    if (e.clientSeq <= high) {
      if (seen === undefined) {
        if (!s.copies.has(`${tenant}\u0000${e.id}`)) {
          return { status: 'unknown', note: 'below the high-water mark' }
        }
        return copyOf(tenant, e, pusher) ?? { status: 'id_conflict' }
      }
      if (seen.content !== contentKey(e)) return { status: 'id_conflict' }
      if (seen.result.status === 'refused') return { status: 'refused', code: seen.result.code }
      if (seen.result.status === 'appended') {
        return { ...seen.result, status: 'duplicate', corrections: readable(seen.result, pusher) }
      }
      // A deferral: decided again from scratch, recorded already.
      const again = decideNew(tenant, item, pusher, committedAt)
      return again.status === 'deferred' ? { ...again, resent: true } : again
    }
    if (e.clientSeq !== high + 1) return { status: 'refused', code: 'seq_gap' }
    return decideNew(tenant, item, pusher, committedAt)
  }

  /** The corrections of an append the pusher may read (rule 12). */
  const readable = (result: Appended, pusher: Pusher | undefined): readonly string[] =>
    result.corrections
      .filter((c) => pusher === undefined || matchesAny(pusher.grants.read, c.entity))
      .map((c) => c.id)

  const decideNew = (
    tenant: string,
    item: AppendItem,
    pusher: Pusher | undefined,
    committedAt: number,
  ): Prediction => {
    const e = item.entry
    if (item.refuse !== undefined) return refusal(item.refuse.code)
    const copy = copyOf(tenant, e, pusher)
    if (copy !== undefined) return copy
    const wall = Number(e.hlc.slice(0, 15))
    if (Math.max(wall, e.occurredAt) - committedAt > ENTRY_CLOCK_SKEW_MS_MAX) {
      return { status: 'deferred', code: 'clock_ahead' }
    }
    const type = current?.find(e.entity)
    if (current !== undefined && type === undefined) {
      return { status: 'deferred', code: 'unknown_type' }
    }
    if (e.corrects !== undefined) {
      const named =
        s.decided.get(`${tenant}\u0000${e.corrects}`) ?? throughOrigins(tenant, e.corrects, pusher)
      if (named?.result.status === 'deferred')
        return { status: 'deferred', code: named.result.code }
      if (
        named === undefined ||
        named.result.status !== 'appended' ||
        (pusher !== undefined && !matchesAny(pusher.grants.write, named.entity))
      ) {
        return refusal('invalid')
      }
    }
    const head = s.entities.get(`${tenant}\u0000${e.entity}`)
    const state = head?.state ?? type?.initial ?? null
    const version = head?.version ?? 0
    if (type === undefined) return append(tenant, e, state, [])
    if (type.validate !== undefined && type.validate(e) !== true) return refusal('invalid')
    if (e.intent === 'request' && e.expect !== undefined && e.expect !== version) {
      return refusal('conflict')
    }
    let after: unknown
    try {
      after = type.reduce(state, e)
    } catch {
      return refusal('invalid')
    }
    const broken = checkInvariants(type, after)
    if (e.intent === 'request' && broken.length > 0) return refusal('invariant')
    if (e.intent !== 'fact' || broken.length === 0 || type.correct === undefined) {
      return append(tenant, e, after, [])
    }
    let corrections = buildCorrections(type, after, broken, e, committedAt)
    if (corrections.some((c) => entryDataBytes(c.data) > ENTRY_DATA_BYTES_MAX)) {
      // One failure record on the fact's own entity instead; its body is the log's to word.
      const rule = (broken[0] as { rule: string }).rule
      const failed = { ...(corrections[0] as Entry), entity: e.entity }
      corrections = [
        {
          ...failed,
          id: correctionId(e.id, rule, 0),
          kind: 'ledger.correction_failed',
          data: null,
        },
      ]
    }
    return append(tenant, e, after, corrections)
  }

  const refusal = (code: string): Prediction => ({ status: 'refused', code, record: true })

  /**
   * Rule 7 across moves: what a `corrects` naming `id`, with nothing decided under it, names:
   * the landing of a copy answered duplicate under `id`, else the first appended client entry
   * carrying `id` as origin, of the pusher's subject or of no one.
   */
  const throughOrigins = (tenant: string, id: string, pusher: Pusher | undefined) => {
    const alias = s.aliases.get(`${tenant}\u0000${id}`)
    if (alias !== undefined) return s.decided.get(`${tenant}\u0000${alias}`)
    for (const c of s.origins.get(`${tenant}\u0000${id}`) ?? []) {
      if (c.id === id) continue
      const bound = s.subjects.get(`${tenant}\u0000${c.clientId}`)
      if (pusher !== undefined && bound !== undefined && bound !== pusher.subject) continue
      const found = s.decided.get(`${tenant}\u0000${c.id}`)
      if (found?.result.status === 'appended') return found
    }
    return undefined
  }

  /** Rule 5 across moves: the first landing `e` is a copy of, as a duplicate, if any. */
  const copyOf = (tenant: string, e: Entry, pusher: Pusher | undefined): Prediction | undefined => {
    // An entry never moved may be the original of a moved copy that landed first.
    const origin = e.origin ?? e.id
    const want = recoveryKey(e)
    for (const c of s.origins.get(`${tenant}\u0000${origin}`) ?? []) {
      if (c.id === e.id) continue
      const bound = s.subjects.get(`${tenant}\u0000${c.clientId}`)
      if (pusher !== undefined && bound !== undefined && bound !== pusher.subject) continue
      if (c.key !== want) continue
      const first = s.decided.get(`${tenant}\u0000${c.id}`)
      if (first?.result.status !== 'appended') continue
      return {
        ...first.result,
        status: 'duplicate',
        corrections: readable(first.result, pusher),
        copy: true,
        of: c.id,
      }
    }
    return undefined
  }

  /** Places `e` and its corrections after the log's heads, folding each into its entity. */
  const append = (
    tenant: string,
    e: Entry,
    after: unknown,
    corrections: readonly Entry[],
  ): Prediction => {
    const versions = new Map<string, number>()
    const heads = new Map<number, number>()
    const states = new Map<string, unknown>([[e.entity, after]])
    const place = (x: Entry): OracleEntry => {
      const partition = partitionOf(tenant, x.entity, partitions)
      const offset = (heads.get(partition) ?? (s.logs[partition] as OracleEntry[]).length) + 1
      heads.set(partition, offset)
      const ekey = `${tenant}\u0000${x.entity}`
      const version = (versions.get(ekey) ?? s.entities.get(ekey)?.version ?? 0) + 1
      versions.set(ekey, version)
      return {
        id: x.id,
        entity: x.entity,
        kind: x.kind,
        version,
        partition,
        offset,
        key: fullKey(x),
      }
    }
    const at = place(e)
    const placed = corrections.map(place)
    for (const c of corrections) {
      const type = current?.find(c.entity)
      if (type === undefined || c.kind === 'ledger.correction_failed') continue
      const ekey = `${tenant}\u0000${c.entity}`
      const before = states.has(c.entity)
        ? states.get(c.entity)
        : (s.entities.get(ekey)?.state ?? type.initial)
      states.set(c.entity, type.reduce(before, c))
    }
    return {
      status: 'appended',
      version: at.version,
      partition: at.partition,
      offset: at.offset,
      committedAt: 0,
      corrections: placed.map((p) => p.id),
      placed,
      commit: () => {
        for (const p of [at, ...placed]) (s.logs[p.partition] as OracleEntry[]).push(p)
        for (const p of placed) {
          s.decided.set(`${tenant}\u0000${p.id}`, {
            content: p.key,
            entity: p.entity,
            result: { ...resultOfPlaced(p), corrections: [] },
          })
        }
        for (const [ekey, version] of versions) {
          const entity = ekey.slice(ekey.indexOf('\u0000') + 1)
          const state = states.has(entity) ? states.get(entity) : s.entities.get(ekey)?.state
          s.entities.set(ekey, { version, state })
        }
      },
    }
  }

  const compare = (e: Entry, got: AppendResult, want: Prediction) => {
    const where = `${e.id} (${e.kind} on ${e.entity})`
    if (got.id !== e.id) disagree(`${where}: result names ${got.id}`)
    const gotCode = got.status === 'refused' || got.status === 'deferred' ? ` ${got.code}` : ''
    const wantCode = want.status === 'refused' || want.status === 'deferred' ? ` ${want.code}` : ''
    if (got.status !== want.status || gotCode !== wantCode) {
      const note = want.status === 'unknown' ? ` (${want.note})` : ''
      disagree(
        `${where}: store said ${got.status}${gotCode}, oracle expected ${want.status}${wantCode}${note}`,
      )
      return
    }
    if (
      (got.status !== 'appended' && got.status !== 'duplicate') ||
      (want.status !== 'appended' && want.status !== 'duplicate')
    ) {
      return
    }
    if (
      got.version !== want.version ||
      got.partition !== want.partition ||
      got.offset !== want.offset
    ) {
      disagree(
        `${where}: store placed it at v${got.version} ${got.partition}/${got.offset}, oracle at v${want.version} ${want.partition}/${want.offset}`,
      )
    }
    const ids = got.corrections.map((c) => c.id).join(',')
    const wanted =
      want.status === 'appended'
        ? (want.placed ?? [])
            .filter((p) => matchesAny(readGrants, p.entity))
            .map((p) => p.id)
            .join(',')
        : want.corrections.join(',')
    if (ids !== wanted) {
      disagree(`${where}: corrections [${ids}], oracle expected [${wanted}]`)
    }
    if (got.status === 'duplicate' && got.committedAt !== want.committedAt) {
      disagree(
        `${where}: duplicate says committed at ${got.committedAt}, first was ${want.committedAt}`,
      )
    }
  }

  return {
    check(tenant, items, caller, results) {
      callsChecked++
      if (results.length !== items.length) {
        disagree(`a call of ${items.length} entries got ${results.length} results`)
        return
      }
      readGrants = caller?.grants.read ?? ['*']
      items.forEach((item, i) => {
        const got = results[i] as AppendResult
        const e = item.entry
        // A store hub's forwarded entry acts for its register's subject (`push.subjects`).
        const pusher =
          caller === undefined ? undefined : { ...caller, subject: subjectFor(caller, e.clientId) }
        const committedAt = got.status === 'appended' ? got.committedAt : now()
        const want = predict(tenant, item, pusher, committedAt)
        compare(e, got, want)
        // Invariant 2: the oracle's own prediction becomes its state.
        const client = `${tenant}\u0000${e.clientId}`
        const copy = want.status === 'duplicate' && want.copy === true
        const uses =
          want.status === 'appended' ||
          want.status === 'deferred' ||
          copy ||
          (want.status === 'refused' && want.record === true)
        const fresh = e.clientSeq > (s.highs.get(client) ?? 0)
        if (uses && fresh) s.highs.set(client, e.clientSeq)
        if (uses && pusher !== undefined && !s.subjects.has(client)) {
          s.subjects.set(client, pusher.subject)
        }
        const key = `${tenant}\u0000${e.id}`
        if (copy) s.copies.add(key)
        // Rule 5 across moves: a moved copy's id names its landing from then on.
        if (copy && fresh && e.origin !== undefined && e.origin !== e.id && want.of !== undefined) {
          s.aliases.set(key, want.of)
        }
        if (want.status === 'appended') {
          want.commit?.()
          // Rule 5 across moves: findable by its first id.
          const okey = `${tenant}\u0000${e.origin ?? e.id}`
          const list = s.origins.get(okey) ?? []
          list.push({ id: e.id, clientId: e.clientId, key: recoveryKey(e) })
          s.origins.set(okey, list)
          s.decided.set(key, {
            content: contentKey(e),
            entity: e.entity,
            result: {
              status: 'appended',
              version: want.version,
              partition: want.partition,
              offset: want.offset,
              committedAt,
              corrections: (want.placed ?? []).map((p) => ({ id: p.id, entity: p.entity })),
            },
          })
        } else if (want.status === 'deferred' && want.resent !== true) {
          s.decided.set(key, {
            content: contentKey(e),
            entity: e.entity,
            result: { status: 'deferred', code: want.code },
          })
        } else if (want.status === 'refused' && want.record === true) {
          s.decided.set(key, {
            content: contentKey(e),
            entity: e.entity,
            result: { status: 'refused', code: want.code },
          })
          s.refusals.push({ tenant, id: e.id, code: want.code })
        }
      })
    },
    setSchema(next) {
      current = next
    },
    save: () => structuredClone(s),
    load(state) {
      s = structuredClone(state as OracleStateData)
    },
    log: () => s.logs,
    refusals: () => s.refusals,
    decision(tenant, id) {
      const key = `${tenant}\u0000${id}`
      const seen = s.decided.get(key)
      if (seen !== undefined)
        return seen.result.status === 'appended' ? 'appended' : seen.result.status
      return s.copies.has(key) ? 'copy' : undefined
    },
    copies(tenant) {
      const prefix = `${tenant}\u0000`
      return [...s.copies].filter((k) => k.startsWith(prefix)).map((k) => k.slice(prefix.length))
    },
    refused(tenant, e) {
      const seen = s.decided.get(`${tenant}\u0000${e.id}`)
      return seen?.result.status === 'refused' && seen.content === contentKey(e)
    },
    get disagreements() {
      return disagreements
    },
    messages,
    get callsChecked() {
      return callsChecked
    },
  }
}
