/**
 * The `fetch` requests of one sync connection (messages.ts `FetchMessage`): the confirmed
 * entries of one entity below a version, history a bootstrap left on the server, answered in
 * `fetched` pages.
 *
 * Invariants (numbered as in `session.ts`):
 * 13. A fetch is answered only by a relay that keeps snapshots (`welcome.snapshots`); elsewhere
 *    it is a bad frame. An entity outside the token's read grants gets the error `forbidden`
 *    (the socket stays open, as for a subscription) and nothing of it is sent. At most
 *    `FETCH_IN_FLIGHT_MAX` fetches are answered at once per connection; one more gets the error
 *    `rate_limited` (the socket stays open) and is not answered: the client sends it again once
 *    one of its fetches is `done`.
 * 14. Pages come in version order from version 1, each at most `pageEntriesMax` entries and
 *    `pageBytesMax` bytes (one bigger entry goes alone), the last with `done: true`; every page
 *    passes the slow-consumer check, and the reads are charged to nothing else (the in-flight
 *    bound keeps them few).
 * 15. Never a silent gap: where the operator dropped the entity's history below a version
 *    (retention, `log-retention.ts`), the pages start at its first kept version and every page
 *    says `dropped` with it; a drop that lands between two pages is found by the next read and
 *    said from then on (the entries sent stay true: the log below a version never changes
 *    except by being dropped).
 */
import { matchesAny, parseEntityName } from '@ledgerline/core'
import { hasLogRetention } from '@ledgerline/log'
import type { HistoryRead } from '@ledgerline/log'
import { FETCH_IN_FLIGHT_MAX } from '@ledgerline/protocol'
import type { ErrorKind, Grants, RelayMessage } from '@ledgerline/protocol'
import type { StoredEntry } from '@ledgerline/core'
import { encodedEntry, entryPageBytes } from './fanout-tail.ts'
import type { SessionContext } from './session.ts'
import { BadMessage, safeInt } from './subscriptions.ts'

export interface FetchHost {
  tenant(): string
  grants(): Grants
  isReady(): boolean
  /** False when the frame was not sent (slow consumer: the session is failing). */
  send(message: RelayMessage): boolean
  sendError(kind: ErrorKind, message: string): void
  fail(kind: ErrorKind, message: string): void
}

export class SessionFetches {
  readonly #ctx: SessionContext
  readonly #host: FetchHost
  #inFlight = 0

  constructor(context: SessionContext, host: FetchHost) {
    this.#ctx = context
    this.#host = host
  }

  fetch(m: Record<string, unknown>): void {
    if (this.#ctx.bootstrap !== true) {
      throw new BadMessage('fetch to a relay that keeps no snapshots (welcome.snapshots)')
    }
    const req = safeInt(m.req, 'req')
    parseEntityName(m.entity)
    const entity = m.entity as string
    const before = safeInt(m.before, 'before')
    if (!matchesAny(this.#host.grants().read, entity)) {
      this.#host.sendError('forbidden', `fetch ${req}: ${entity} is outside the read grants`)
      return
    }
    if (this.#inFlight >= FETCH_IN_FLIGHT_MAX) {
      this.#host.sendError(
        'rate_limited',
        `fetch ${req}: at most ${FETCH_IN_FLIGHT_MAX} fetches at once (FETCH_IN_FLIGHT_MAX); send it again after one is done`,
      )
      return
    }
    this.#inFlight++
    void this.#answer(req, entity, before).finally(() => this.#inFlight--)
  }

  async #answer(req: number, entity: string, before: number): Promise<void> {
    const { pageEntriesMax, pageBytesMax } = this.#ctx.limits
    let from = 1
    let dropped: number | undefined
    try {
      for (;;) {
        const want = Math.max(0, Math.min(pageEntriesMax, before - from))
        const kept =
          want === 0
            ? { _tag: 'entries' as const, entries: [] }
            : await this.#read(entity, from, want)
        if (!this.#host.isReady()) return
        if (kept._tag === 'dropped') {
          // Invariant 15: start again at the first kept version, and say so.
          dropped = kept.firstKept
          from = kept.firstKept
          continue
        }
        const read = kept.entries
        const page: StoredEntry[] = []
        let bytes = 0
        for (const e of read) {
          const size = entryPageBytes(encodedEntry(e))
          if (page.length > 0 && bytes + size > pageBytesMax) break
          page.push(e)
          bytes += size
        }
        const last = page.at(-1)
        if (last !== undefined) from = last.version + 1
        // A page cut by bytes is never the last: the rest of the read comes next.
        const done =
          want === 0 || (page.length === read.length && (read.length < want || from >= before))
        const sent = this.#host.send({
          type: 'fetched',
          req,
          entity,
          entries: page,
          done,
          ...(dropped === undefined ? {} : { dropped }),
        })
        if (!sent || done) return
      }
    } catch (error) {
      this.#ctx.logger.error(
        { event: 'internal_error', err: error },
        'reading the log for a fetch failed',
      )
      this.#host.fail('internal', 'could not read the log')
    }
  }

  /** One read of the entity's ledger, dropped history as its outcome (invariant 15). */
  #read(entity: string, from: number, want: number): Promise<HistoryRead> {
    const store = this.#ctx.store
    const tenant = this.#host.tenant()
    if (hasLogRetention(store)) return store.readHistory(tenant, entity, from, want)
    return store.readEntity(tenant, entity, from, want).then((entries) => ({
      _tag: 'entries',
      entries,
    }))
  }
}
