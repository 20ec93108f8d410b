/**
 * The oracle's vocabulary and state (`oracle.ts`): what it expects the log to hold at each
 * position, what it predicts for an item, the state it keeps between calls, and the keys it
 * compares content by. Plain data and pure helpers; the rules are in `oracle.ts`.
 */
import type { Entry, StoredEntry } from '@ledgerline/core'
import { fullKey, stable } from './content.ts'

/** What the oracle expects the log to hold at one position. */
export interface OracleEntry {
  readonly id: string
  readonly entity: string
  readonly kind: string
  readonly version: number
  readonly partition: number
  readonly offset: number
  /** `fullKey` of the entry as it was decided (clients') or made (corrections). */
  readonly key: string
}

export interface OracleRefusal {
  readonly tenant: string
  readonly id: string
  readonly code: string
}

export interface Appended {
  readonly status: 'appended'
  readonly version: number
  readonly partition: number
  readonly offset: number
  readonly committedAt: number
  readonly corrections: readonly { readonly id: string; readonly entity: string }[]
}

export type Decided =
  | Appended
  | { readonly status: 'refused'; readonly code: string }
  | { readonly status: 'deferred'; readonly code: string }

/** What the log recorded for one of its own corrections. */
export function resultOfPlaced(p: OracleEntry): Appended {
  return {
    status: 'appended',
    version: p.version,
    partition: p.partition,
    offset: p.offset,
    committedAt: 0,
    corrections: [],
  }
}

export type Prediction =
  | {
      readonly status: 'appended' | 'duplicate'
      readonly version: number
      readonly partition: number
      readonly offset: number
      readonly committedAt: number
      readonly corrections: readonly string[]
      /** Where the corrections of a new append go (their ids are `corrections`). */
      readonly placed?: readonly OracleEntry[] | undefined
      readonly commit?: (() => void) | undefined
      /** A moved entry answered as a copy of its first landing (rule 5 across moves). */
      readonly copy?: boolean | undefined
      /** The id of that first landing. */
      readonly of?: string | undefined
    }
  | { readonly status: 'refused'; readonly code: string; readonly record?: boolean }
  | { readonly status: 'deferred'; readonly code: string; readonly resent?: boolean }
  | { readonly status: 'id_conflict' }
  | { readonly status: 'client_taken' }
  | { readonly status: 'unknown'; readonly note: string }

export interface OracleStateData {
  highs: Map<string, number>
  /** The subject each clientId is bound to (rule 11). */
  subjects: Map<string, string>
  decided: Map<string, { content: string; entity: string; result: Decided }>
  entities: Map<string, { version: number; state: unknown }>
  logs: OracleEntry[][]
  refusals: OracleRefusal[]
  /** Client entries appended, by (tenant, origin or own id), in commit order. */
  origins: Map<string, { id: string; clientId: string; key: string }[]>
  /** Ids whose clientSeq a copy used up (nothing recorded under them). */
  copies: Set<string>
  /** Moved copies answered duplicate on their first push, by key: the landing's id. */
  aliases: Map<string, string>
}

export function emptyState(partitions: number): OracleStateData {
  return {
    highs: new Map(),
    subjects: new Map(),
    decided: new Map(),
    entities: new Map(),
    logs: Array.from({ length: partitions }, () => []),
    refusals: [],
    origins: new Map(),
    copies: new Set(),
    aliases: new Map(),
  }
}

/** An entry's content apart from what restore recovery changes when it moves it. */
export function recoveryKey(e: Entry): string {
  const { id: _i, clientId: _c, clientSeq: _s, corrects: _k, origin: _o, ...rest } = e
  const {
    version: _v,
    partition: _p,
    offset: _f,
    committedAt: _t,
    ...content
  } = rest as Entry & Partial<StoredEntry>
  return stable(content)
}

/** A stored entry as the oracle keeps it, for comparing the store's log with its own. */
export function oracleEntryOf(e: StoredEntry): OracleEntry {
  return {
    id: e.id,
    entity: e.entity,
    kind: e.kind,
    version: e.version,
    partition: e.partition,
    offset: e.offset,
    key: fullKey(e),
  }
}
