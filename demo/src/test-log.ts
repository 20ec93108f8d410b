/**
 * For tests: a tiny server log over the point-of-sale schema. It decides every entry with
 * core's `decide` (the function the relay's stores use), appends corrections to their entities,
 * and lets a test read each entity's confirmed state, as a synced register would.
 */
import { decide, type Decision, type Entry, type Head } from '@ledgerline/core'
import type { Draft } from './sale.ts'
import schema from './schema.ts'

export const CLIENT_A = 'a'.repeat(32)
export const CLIENT_B = 'b'.repeat(32)

export interface EntryOptions {
  readonly client?: string | undefined
  readonly at?: number | undefined
  readonly intent?: 'fact' | 'request' | undefined
  readonly corrects?: string | undefined
}

let seq = 0

/** An entry as a register would make it, with a fresh clientSeq. */
export function entry(
  entity: string,
  kind: string,
  data: Record<string, unknown>,
  opts: EntryOptions = {},
): Entry {
  const clientId = opts.client ?? CLIENT_A
  const clientSeq = ++seq
  const at = opts.at ?? 1000
  return {
    id: `${clientId}-${clientSeq}`,
    tenant: 't',
    entity,
    kind,
    data: data as Entry['data'],
    intent: opts.intent ?? 'fact',
    clientId,
    clientSeq,
    hlc: `${String(at).padStart(15, '0')}:00000:${clientId.slice(0, 4)}`,
    occurredAt: at,
    ...(opts.corrects === undefined ? {} : { corrects: opts.corrects }),
  }
}

export interface TestLog {
  append(e: Entry): Decision
  /** Appends a register's drafts in order; returns the decisions. */
  appendDrafts(drafts: readonly Draft[], opts?: EntryOptions): Decision[]
  state<S>(entity: string): S
  kinds(): string[]
  /** Every appended entry (corrections included), in log order. */
  entries(): readonly Entry[]
}

/** A tiny server log: applies decisions, including corrections to other entities. */
export function createLog(): TestLog {
  const heads = new Map<string, Head>()
  const head = (entity: string): Head =>
    heads.get(entity) ?? { state: schema.typeOf(entity).initial, version: 0 }
  const entries: Entry[] = []
  const log: TestLog = {
    append(e) {
      const d = decide(schema, head(e.entity), e, 5000)
      if (d._tag !== 'append') return d
      heads.set(e.entity, { state: d.state, version: head(e.entity).version + 1 })
      entries.push(e)
      for (const c of d.corrections) {
        entries.push(c)
        const h = head(c.entity)
        // Own-entity corrections are already folded into `d.state`.
        const state = c.entity === e.entity ? h.state : schema.typeOf(c.entity).reduce(h.state, c)
        heads.set(c.entity, { state, version: h.version + 1 })
      }
      return d
    },
    appendDrafts(drafts, opts = {}) {
      return drafts.map((d) =>
        log.append(
          entry(d.entity, d.kind, d.data as Record<string, unknown>, {
            ...opts,
            intent: d.intent ?? opts.intent,
            corrects: d.corrects,
          }),
        ),
      )
    },
    state: <S>(entity: string) => head(entity).state as S,
    kinds: () => entries.map((e) => e.kind),
    entries: () => entries,
  }
  return log
}
