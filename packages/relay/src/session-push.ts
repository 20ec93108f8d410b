/**
 * The pushes of one sync connection: a `push` checked against the identity and the write
 * grants, handed to the relay's commit queue, and acked once the log made it durable. The
 * session (`session.ts`) decodes frames and owns the socket; this module owns the appends in
 * flight.
 *
 * Terms: an *item* is one entry of a push as the log gets it, with a `refuse` when the relay
 * refuses it itself (another tenant, no write grant); an append is *in flight* from `submit`
 * until its ack is sent or the session fails.
 *
 * Invariants (numbered as in `session.ts`):
 * 5. Acks follow pushes in order, each after the log made its results durable, in parts that
 *    each fit in a frame (`ack-parts.ts`). A push the relay or the log refuses as a whole gets no
 *    ack: the connection closes (`overloaded` past the commit queue bound, with the relay's retry
 *    hint; `client_taken` when the clientId is another subject's; `internal` otherwise), nothing
 *    of it is recorded, and the client resends. An entry of another client is a bad frame and
 *    uses up nobody's clientSeq; an entry of another tenant or outside the write grants is
 *    recorded refused `forbidden`.
 * 7. `drain` resolves once no append is in flight: every append started before it is acked (or
 *    its session failed) by then. At most `PUSH_IN_FLIGHT_MAX` appends are in flight.
 * 11. A session whose token has `grants.forward` (a store hub) may push entries of other
 *    clientIds that `push.subjects` names: each is checked against the forward grant (outside →
 *    recorded refused `forbidden`) and bound to its named subject by the log; a clientId bound to
 *    another subject gets `id_conflict` for that entry, nothing is recorded, and the session
 *    stays open (other devices' entries go on). Anyone else who sends `subjects` sends a bad
 *    frame.
 */
import { matchesAny } from '@ledgerline/core'
import type { Entry } from '@ledgerline/core'
import { PUSH_IN_FLIGHT_MAX } from '@ledgerline/protocol'
import type { AckResult, ErrorKind } from '@ledgerline/protocol'
import { encodeAckParts, readableRefs } from './ack-parts.ts'
import { isLogStoreError } from './log-store.ts'
import type { AppendItem, ClientTakenResult } from './log-store.ts'
import { peekPushEntries } from './push-peek.ts'
import { RelayError } from './relay-error.ts'
import type { SessionIdentity } from './session-auth.ts'
import type { SessionContext } from './session.ts'
import { BadMessage, safeInt } from './subscriptions.ts'

/** What the pushes need of the session that owns them. */
export interface PushHost {
  identity(): SessionIdentity
  /** True (and the session closing) when the socket's unsent bytes passed the cap. */
  isSlow(): boolean
  /** Sends a frame unless the socket is slow or closed; false when it was not sent. */
  sendBytes(bytes: Uint8Array): boolean
  /** An error that closes the socket; `overloaded` carries the relay's retry hint. */
  fail(kind: ErrorKind, message: string): void
  /** `client_taken`, naming the log the session was welcomed by. */
  taken(message: string): void
  overloaded(message: string): void
}

/**
 * The items of a push as the log gets them, refusing what this relay may not write for the
 * identity (invariant 5). Throws `BadMessage` for an entry of another client, unless the
 * session forwards (a token with `grants.forward`, invariant 11) and `subjects` names the
 * entry's clientId: such an entry is bounded by the forward grant instead of the write grant.
 *
 * @example
 * pushItems(entries, identity) // [{ entry }, { entry, refuse: { code: 'forbidden', reason } }]
 */
export function pushItems(
  entries: readonly Entry[],
  identity: SessionIdentity,
  subjects?: Readonly<Record<string, string>> | undefined,
): AppendItem[] {
  const items: AppendItem[] = []
  const forward = identity.grants.forward
  for (const entry of entries) {
    const forwarded =
      entry.clientId !== identity.clientId &&
      forward !== undefined &&
      subjects !== undefined &&
      Object.hasOwn(subjects, entry.clientId)
    if (entry.clientId !== identity.clientId && !forwarded) {
      // Not recorded: another client's clientSeq must never be used up by this connection.
      throw new BadMessage(`entry ${entry.id} is not of this connection's client`)
    }
    const grant = forwarded ? (forward ?? []) : identity.grants.write
    if (entry.tenant !== identity.tenant) {
      items.push({ entry, refuse: { code: 'forbidden', reason: 'entry of another tenant' } })
    } else if (!matchesAny(grant, entry.entity)) {
      items.push({
        entry,
        refuse: {
          code: 'forbidden',
          reason: `no ${forwarded ? 'forward' : 'write'} grant for ${entry.entity}`,
        },
      })
    } else {
      items.push({ entry })
    }
  }
  return items
}

/**
 * The subjects a forwarding push names (`push.subjects`), only for a session whose token has
 * `grants.forward` (invariant 11); `BadMessage` for anyone else who sends them.
 *
 * @example
 * forwardSubjects(m, identity) // { [clientId]: 'till-1' } | undefined
 */
export function forwardSubjects(
  m: Record<string, unknown>,
  identity: SessionIdentity,
): Readonly<Record<string, string>> | undefined {
  if (m.subjects === undefined) return undefined
  if (identity.grants.forward === undefined) {
    throw new BadMessage('push subjects need a token with a forward grant')
  }
  // `decodeMessage` checked the shape (clientId → subject strings).
  return m.subjects as Readonly<Record<string, string>>
}

/**
 * The wire result of a forwarded entry whose clientId the log binds to another subject: not
 * recorded, and the forwarding session stays open (invariant 11). `id_conflict` tells the
 * device what it must do either way: send the entry again under a new clientId.
 *
 * @example
 * forwardedTaken({ id, status: 'client_taken', reason }) // { id, status: 'id_conflict', reason }
 */
export function forwardedTaken(result: ClientTakenResult): AckResult {
  return { id: result.id, status: 'id_conflict', reason: result.reason }
}

/** What a forwarding session's entries may write: its own write grant and its forward grant. */
function forwardWrite(identity: SessionIdentity): readonly string[] {
  return [...identity.grants.write, ...(identity.grants.forward ?? [])]
}

/**
 * How the session closes when the log rejected a whole push (invariant 5): `overloaded` with the
 * retry hint, `shutting_down` while the log closes, `internal` for anything else.
 *
 * @example
 * appendFailure(new LogStoreError('overloaded', 'queue full')) // { kind: 'overloaded', … }
 */
export function appendFailure(error: unknown): {
  readonly kind: 'overloaded' | 'shutting_down' | 'internal'
  readonly message: string
} {
  if (isLogStoreError(error, 'overloaded')) {
    // Nothing of the push was recorded: the client backs off (`backoffMsMin` of the error is
    // the retry hint) and resends the same entries.
    return { kind: 'overloaded', message: `the log is overloaded, retry later: ${error.message}` }
  }
  if (
    isLogStoreError(error, 'closed') ||
    (error instanceof RelayError && error.kind === 'store_closed')
  ) {
    return { kind: 'shutting_down', message: 'the log is closing' }
  }
  return { kind: 'internal', message: 'the log could not append; resend after reconnecting' }
}

/**
 * @example
 * const pushes = new SessionPushes(context, session, host)
 * pushes.push(message) // on shutdown: await pushes.drain()
 */
export class SessionPushes {
  readonly #ctx: SessionContext
  /** The commit queue's fairness key: the session. */
  readonly #flow: object
  readonly #host: PushHost
  readonly #inFlight = new Set<Promise<void>>()

  constructor(context: SessionContext, flow: object, host: PushHost) {
    this.#ctx = context
    this.#flow = flow
    this.#host = host
  }

  /**
   * A push refused from its first bytes (`push-peek.ts`), before it costs a decode: over
   * `pushEntriesMax`, or past the commit queue's bound (invariant 5). Only for a ready session.
   */
  refusedUndecoded(data: Uint8Array): boolean {
    const entries = peekPushEntries(data)
    if (entries === undefined) return false
    const { pushEntriesMax, commitQueueEntriesMax } = this.#ctx.limits
    if (entries > pushEntriesMax) {
      this.#host.fail('too_large', `push of ${entries} entries; at most ${pushEntriesMax}`)
      return true
    }
    if (this.#ctx.commits.wouldAdmit(entries, this.#inFlight.size === 0)) return false
    this.#ctx.metrics.overloaded()
    this.#host.overloaded(`more than ${commitQueueEntriesMax} entries wait for commit`)
    return true
  }

  push(m: Record<string, unknown>): void {
    const batch = safeInt(m.batch, 'batch')
    if (!Array.isArray(m.entries)) throw new BadMessage('push entries must be a list')
    if (m.entries.length > this.#ctx.limits.pushEntriesMax) {
      this.#host.fail(
        'too_large',
        `push of ${m.entries.length} entries; at most ${this.#ctx.limits.pushEntriesMax}`,
      )
      return
    }
    if (this.#inFlight.size >= PUSH_IN_FLIGHT_MAX) {
      this.#host.fail('rate_limited', `more than ${PUSH_IN_FLIGHT_MAX} pushes in flight`)
      return
    }
    if (this.#host.isSlow()) return
    const identity = this.#host.identity()
    // `decodeMessage` validated every entry fully (`validateMessage` → core's `validateEntry`)
    // and copied it into a fresh object: validating again here only costs time per entry.
    const subjects = forwardSubjects(m, identity)
    const items = pushItems(m.entries as Entry[], identity, subjects)
    // Invariant 5: past the relay's commit queue bound nothing reaches the log.
    // The pusher binds the clientId to its subject and bounds `corrects` and correction
    // references by its grants (`log-store.ts` guarantees 11 and 12); a forwarded clientId is
    // bound to its own subject (invariant 11), and its `corrects` are bounded by the forward
    // grant as its entries are.
    const pusher =
      subjects === undefined
        ? { subject: identity.subject, grants: identity.grants }
        : {
            subject: identity.subject,
            grants: { read: identity.grants.read, write: forwardWrite(identity) },
            subjects,
          }
    const appended = this.#ctx.commits.submit(
      this.#flow,
      identity.tenant,
      items,
      this.#inFlight.size === 0,
      pusher,
    )
    if (appended === undefined) {
      this.#ctx.metrics.overloaded()
      this.#host.overloaded(
        `more than ${this.#ctx.limits.commitQueueEntriesMax} entries wait for commit`,
      )
      return
    }
    const started = performance.now()
    const done = appended.then(
      (appended) => {
        if (subjects !== undefined) {
          const results = appended.map((r) => (r.status === 'client_taken' ? forwardedTaken(r) : r))
          this.#ctx.metrics.appended(results, performance.now() - started)
          this.#sendAck(batch, results)
          return
        }
        if (appended.some((r) => r.status === 'client_taken')) {
          // Nothing of it was recorded: another subject bound the clientId after our hello.
          this.#host.taken(`clientId ${identity.clientId} belongs to another user`)
          return
        }
        const results = appended as AckResult[]
        this.#ctx.metrics.appended(results, performance.now() - started)
        this.#sendAck(batch, results)
      },
      (error: unknown) => {
        const failure = appendFailure(error)
        if (failure.kind === 'overloaded') {
          this.#ctx.metrics.overloaded()
          this.#host.overloaded(failure.message)
          return
        }
        if (failure.kind === 'internal') {
          this.#ctx.logger.error({ event: 'append_failed', err: error }, 'append failed')
        }
        this.#host.fail(failure.kind, failure.message)
      },
    )
    this.#inFlight.add(done)
    void done.finally(() => this.#inFlight.delete(done))
  }

  /** Invariant 7: resolves once every append in flight is acked or failed. */
  async drain(): Promise<void> {
    while (this.#inFlight.size > 0) await Promise.allSettled(this.#inFlight)
  }

  /** Invariant 5: the ack in parts, with the corrections the pusher may read (now). */
  #sendAck(batch: number, results: readonly AckResult[]): void {
    let frames: Uint8Array[]
    try {
      frames = encodeAckParts(batch, readableRefs(results, this.#host.identity().grants.read))
    } catch (error) {
      this.#ctx.logger.error(
        { event: 'internal_error', err: error, type: 'ack' },
        'cannot encode a message',
      )
      this.#host.fail('internal', 'cannot send ack')
      return
    }
    for (const frame of frames) if (!this.#host.sendBytes(frame)) return
  }
}
