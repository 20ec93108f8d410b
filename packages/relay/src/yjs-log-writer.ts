/**
 * How the y-websocket endpoint (`yjs-endpoint.ts`) writes to the log: like a client of its own,
 * so dedupe and ordering hold for its entries as for `/sync`.
 *
 * Terms: the writer's *clientId* is random per process; its *clientSeq* counts per tenant from
 * the log's high-water mark of that clientId; an update over one entry goes as *parts*
 * (`crdtUpdateDrafts` of the model).
 *
 * Invariants (2 of `yjs-endpoint.ts`):
 * 1. Per tenant, appends run one after another in call order and use gap-free clientSeqs from
 *    the log's high-water mark (read on first use, and again after a `seq_gap` answer to the
 *    first entry, at most once per update).
 * 2. One update is one `append` call: its parts land in one transaction, or none of them.
 * 3. An update the log refuses or defers (anything but `appended` or `duplicate`) rejects its
 *    promise; the next update of the tenant still runs.
 * 4. `settled` resolves once every append started before it has finished.
 * 5. `append` resolves with the entity versions of its entries (a `duplicate` answer's too), so
 *    a room knows which of this writer's entries its document already holds.
 */
import { randomFillSync } from 'node:crypto'
import type { Entry } from '@ledgerline/core'
import { createClientId, createHlcClock, crdtUpdateDrafts } from '@ledgerline/core'
import type { LogStore } from './log-store.ts'

export interface YjsLogWriter {
  /** This writer's clientId. */
  readonly clientId: string
  /**
   * Appends one Yjs update to `entity` (one entry or its parts, in one call); resolves with the
   * versions the entity's ledger holds them at.
   */
  append(tenant: string, entity: string, update: Uint8Array): Promise<number[]>
  /** Resolves once every append started so far has finished (invariant 4). */
  settled(): Promise<void>
}

/**
 * @example
 * const writer = createYjsLogWriter(store, Date.now)
 * await writer.append('acme', 'doc/notes', Y.encodeStateAsUpdate(doc))
 */
export function createYjsLogWriter(store: LogStore, now: () => number): YjsLogWriter {
  const clientId = createClientId((bytes) => randomFillSync(bytes))
  const clock = createHlcClock(clientId, now)
  const seqs = new Map<string, { next: number | undefined; chain: Promise<void> }>()

  function entriesOf(tenant: string, entity: string, update: Uint8Array, first: number): Entry[] {
    const make = (clientSeq: number, kind: string, data: Entry['data']): Entry => ({
      id: `${clientId}-${clientSeq}`,
      tenant,
      entity,
      kind,
      data,
      intent: 'fact',
      clientId,
      clientSeq,
      hlc: clock.tick(),
      occurredAt: now(),
    })
    const drafts = crdtUpdateDrafts('yjs', update, `${clientId}-${first}`) ?? []
    return drafts.map((draft, i) => make(first + i, draft.kind, draft.data))
  }

  return {
    clientId,
    append(tenant, entity, update) {
      let seq = seqs.get(tenant)
      if (seq === undefined) {
        seq = { next: undefined, chain: Promise.resolve() }
        seqs.set(tenant, seq)
      }
      const s = seq
      const job = s.chain.then(async () => {
        for (let attempt = 0; attempt < 2; attempt++) {
          s.next ??= (await store.client(tenant, clientId)).high + 1
          const first = s.next
          const entries = entriesOf(tenant, entity, update, first)
          const results = await store.append(
            tenant,
            entries.map((entry) => ({ entry })),
          )
          const gap = results.find((r) => r.status === 'refused' && r.code === 'seq_gap')
          if (gap !== undefined && results[0] === gap) {
            s.next = undefined // another writer of ours moved on: read the high-water mark again
            continue
          }
          s.next = first + entries.length
          // `stored`: a store hub holds it durably for head office (no version yet).
          const refused = results.find(
            (r) => r.status !== 'appended' && r.status !== 'duplicate' && r.status !== 'stored',
          )
          if (refused !== undefined) {
            throw new Error(`y-websocket update not appended: ${JSON.stringify(refused)}`)
          }
          return results.map((r) => ('version' in r ? r.version : 0))
        }
        throw new Error('y-websocket update refused twice with seq_gap')
      })
      s.chain = job.then(
        () => undefined,
        () => undefined,
      )
      return job
    },
    async settled() {
      for (const s of seqs.values()) await s.chain
    },
  }
}
