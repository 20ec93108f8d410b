/**
 * What the server log's conformance suite (`log-store-contract.ts` and its parts
 * `log-store-contract-{writes,decisions,reads,edges}.ts`) decides with and builds its entries
 * from: the harness each part runs on, the contract schema, test clients with deterministic ids,
 * and readers of a whole log.
 */
import { expect } from 'vitest'
import { defineEntity, defineSchema, entryId, partitionOf } from '@ledgerline/core'
import type { Data, Entry, Schema, StoredEntry } from '@ledgerline/core'
import { Encoder } from '@msgpack/msgpack'
import type { AppendResult, LogStore } from '@ledgerline/log'

/** What `setup` is asked to open. */
export interface LogStoreContractOptions {
  /** The schema to decide with; `undefined` for the plain-log tests. */
  readonly schema: Schema | undefined
  readonly partitions: number
  readonly now: () => number
  /** The store's bound on entries queued for commit; `undefined` for its default. */
  readonly commitQueueEntriesMax: number | undefined
}

export interface LogStoreContractSubject {
  readonly store: LogStore
  /**
   * Closes the store (if still open) and opens the same log again, with another schema when
   * `options.schema` is given (a relay redeployed with new entity types).
   */
  readonly reopen?:
    | ((options?: { readonly schema?: Schema | undefined }) => Promise<LogStore>)
    | undefined
  /** Closes whatever is open and removes the log. */
  readonly cleanup: () => Promise<void>
}

/**
 * What `runLogStoreContract` hands each part of the suite: a fresh store per test, closed and
 * removed by the suite after each test.
 */
export interface ContractHarness {
  /**
   * A fresh store: with the contract schema (`'typed'`, the default), without one (`'plain'`)
   * or with the schema given; bounded at `commitQueueEntriesMax` queued entries when given.
   */
  open(mode?: 'typed' | 'plain' | Schema, commitQueueEntriesMax?: number): Promise<LogStore>
  subject(): LogStoreContractSubject | undefined
  /** Closes and removes the store `open` made (the suite also does after each test). */
  cleanup(): Promise<void>
  /** The store's clock. */
  now(): number
  /** Moves the store's clock forward. */
  advance(ms: number): void
}

/** Partition count the suite asks for. */
export const CONTRACT_PARTITIONS = 4

/**
 * The entity types the suite decides with:
 * - `stock`: `stock.moved` adds `qty`; `nonNegative` breaks below zero and is corrected by
 *   `stock.oversold`, which adds the shortfall back (so the state returns to 0);
 * - `payment`: `card.declined` breaks `notDeclined`, corrected by `order.balance_due` on the
 *   order the payment names (a correction to another entity);
 * - `order`: counts lines and notes `order.balance_due`;
 * - `seat`: `seat.claimed` takes the seat; `capacity` breaks above one (requests are refused).
 */
export const contractTypes = [
  defineEntity<{ onHand: number }>({
    type: 'stock',
    initial: { onHand: 0 },
    reduce: (s, e) => {
      if (e.kind === 'stock.moved') return { onHand: s.onHand + Number(e.data.qty) }
      if (e.kind === 'stock.oversold') return { onHand: s.onHand + Number(e.data.short) }
      return s
    },
    invariants: { nonNegative: (s) => s.onHand >= 0 || 'stock below zero' },
    correct: (s, _broken, e) => [
      { kind: 'stock.oversold', data: { short: -s.onHand, sale: e.id } },
    ],
  }),
  defineEntity<{ declined: boolean; order: string }>({
    type: 'payment',
    initial: { declined: false, order: '' },
    reduce: (s, e) =>
      e.kind === 'card.declined' ? { declined: true, order: String(e.data.order) } : s,
    invariants: { notDeclined: (s) => !s.declined || 'card declined' },
    correct: (s, _broken, e) => [
      { kind: 'order.balance_due', entity: s.order, data: { payment: e.id } },
    ],
  }),
  defineEntity<{ lines: number; due: boolean }>({
    type: 'order',
    initial: { lines: 0, due: false },
    reduce: (s, e) => {
      if (e.kind === 'order.line') return { ...s, lines: s.lines + 1 }
      if (e.kind === 'order.balance_due') return { ...s, due: true }
      return s
    },
  }),
  defineEntity<{ taken: number }>({
    type: 'seat',
    initial: { taken: 0 },
    reduce: (s, e) => (e.kind === 'seat.claimed' ? { taken: s.taken + 1 } : s),
    invariants: { capacity: (s) => s.taken <= 1 || 'seat already taken' },
  }),
]
/**
 * Schema bugs the log must survive without poisoning a ledger (issue 13, cases 1 and 3):
 * - `shelf`: `shelf.sold` takes `qty`; `nonNegative` is corrected by `shelf.oversold`, whose
 *   draft copies the sale's data twice, so a sale with a large note makes a correction over
 *   `ENTRY_DATA_BYTES_MAX`;
 * - `charge`: `charge.declined` breaks `notDeclined`, corrected by `tab.balance_due` on the tab
 *   the charge names;
 * - `tab`: its `reduce` knows `tab.opened` and `tab.line` only and throws on anything else, like
 *   an app that added the charge rule before teaching `tab` the kind.
 */
export const faultyTypes = [
  defineEntity<{ onHand: number }>({
    type: 'shelf',
    initial: { onHand: 0 },
    reduce: (s, e) => (e.kind === 'shelf.sold' ? { onHand: s.onHand - Number(e.data.qty) } : s),
    invariants: { nonNegative: (s) => s.onHand >= 0 || 'shelf below zero' },
    correct: (_s, _broken, e) => [{ kind: 'shelf.oversold', data: { sale: e.data, copy: e.data } }],
  }),
  defineEntity<{ declined: boolean; tab: string }>({
    type: 'charge',
    initial: { declined: false, tab: '' },
    reduce: (s, e) =>
      e.kind === 'charge.declined' ? { declined: true, tab: String(e.data.tab) } : s,
    invariants: { notDeclined: (s) => !s.declined || 'charge declined' },
    correct: (s, _broken, e) => [
      { kind: 'tab.balance_due', entity: s.tab, data: { charge: e.id } },
    ],
  }),
  defineEntity<{ lines: number }>({
    type: 'tab',
    initial: { lines: 0 },
    reduce: (s, e) => {
      if (e.kind === 'tab.opened') return s
      if (e.kind === 'tab.line') return { lines: s.lines + 1 }
      throw new Error(`tab cannot fold ${e.kind}`)
    },
  }),
]
export const CONTRACT_SCHEMA: Schema = defineSchema(...contractTypes, ...faultyTypes)

export interface TestClient {
  readonly clientId: string
  next(
    entity: string,
    kind: string,
    data: Data,
    options?: {
      intent?: 'fact' | 'request'
      expect?: number
      corrects?: string
      /** The author's clock at append (`hlc` and `occurredAt`); near the contract's by default. */
      at?: number
    },
  ): Entry
}

/** A client with a deterministic id (from `n`) that numbers its entries gap-free. */
export function client(n: number, tenant = 'acme'): TestClient {
  const clientId = n.toString(16).padStart(32, '0')
  let seq = 0
  return {
    clientId,
    next(entity, kind, data, options = {}) {
      seq++
      const at = options.at ?? 1_700_000_000_000 + seq
      const entry: Entry = {
        id: entryId(clientId, seq),
        tenant,
        entity,
        kind,
        data,
        intent: options.intent ?? 'fact',
        clientId,
        clientSeq: seq,
        hlc: `${String(at).padStart(15, '0')}:00000:${clientId}`,
        occurredAt: at,
        ...(options.expect === undefined ? {} : { expect: options.expect }),
        ...(options.corrects === undefined ? {} : { corrects: options.corrects }),
      }
      return entry
    },
  }
}

/** `count` entity names of `type` that live in `partition` for `tenant`. */
export function entitiesInPartition(
  tenant: string,
  type: string,
  partition: number,
  count: number,
) {
  const names: string[] = []
  for (let i = 0; names.length < count && i < 10_000; i++) {
    const name = `${type}/p${i}`
    if (partitionOf(tenant, name, CONTRACT_PARTITIONS) === partition) names.push(name)
  }
  return names
}

export async function readAll(store: LogStore, tenant: string): Promise<StoredEntry[]> {
  const all: StoredEntry[] = []
  for (let p = 0; p < store.partitions; p++) {
    let after = 0
    for (let pages = 0; pages < 10_000; pages++) {
      const page = await store.readPartition(tenant, p, after, 100)
      all.push(...page.entries)
      after = page.throughOffset
      if (page.entries.length < 100) break
    }
  }
  return all
}

/** Versions 1..n per entity and offsets 1..n per partition (the store holds one tenant). */
export function checkDense(entries: readonly StoredEntry[]): void {
  const versions = new Map<string, number[]>()
  const offsets = new Map<number, number[]>()
  for (const e of entries) {
    versions.set(e.entity, [...(versions.get(e.entity) ?? []), e.version])
    offsets.set(e.partition, [...(offsets.get(e.partition) ?? []), e.offset])
  }
  for (const list of versions.values()) {
    expect([...list].sort((a, b) => a - b)).toEqual(range(1, list.length))
  }
  for (const list of offsets.values()) expect(list).toEqual(range(1, list.length))
}

const dataEncoder = new Encoder()

/** An entry's `data` encoded as on the wire, in bytes. */
export function dataBytes(entry: Entry): number {
  return dataEncoder.encode(entry.data).byteLength
}

/** The body of the entry an ack's correction reference names (read back from the log). */
export async function bodyOf(
  store: LogStore,
  ref: { readonly entity: string; readonly version: number } | undefined,
): Promise<StoredEntry | undefined> {
  if (ref === undefined) return undefined
  const [entry] = await store.readEntity('acme', ref.entity, ref.version, 1)
  return entry
}

export function range(from: number, to: number): number[] {
  return Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i)
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

export async function waitFor(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const until = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > until) throw new Error('condition not met in time')
    await sleep(5)
  }
}

/** `entry` moved to `clientId` at `clientSeq`, as restore recovery moves it. */
export function moved(entry: Entry, clientId: string, clientSeq: number): Entry {
  return {
    ...entry,
    id: entryId(clientId, clientSeq),
    clientId,
    clientSeq,
    origin: entry.origin ?? entry.id,
  }
}

/** What a duplicate of `first` answers to the item `id`. */
export function duplicateOf(first: AppendResult | undefined, id: string): AppendResult {
  return { ...(first as AppendResult), id, status: 'duplicate' } as AppendResult
}
