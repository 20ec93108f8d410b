/**
 * Who one sync connection acts for: the `hello` check (protocol, clientId, token, the log's
 * binding of the clientId, the tenant's seat), the `welcome` it earns, `renew`, and the token's
 * expiry. The session (`session.ts`) owns the socket and its state; this module owns the
 * identity and tells the session when to welcome or fail.
 *
 * Terms: the *identity* is (tenant, subject, grants, clientId), empty until `welcome`; a
 * *renewal* is a `renew` whose token is being checked; a *seat* is the tenant's connection
 * reservation (`relay-gates.ts`).
 *
 * Invariants (numbered as in `session.ts`):
 * 1. `hello` moves the session to checking the token before anything asynchronous starts, and
 *    an answer that arrives after the session moved on (closed, failed) changes nothing.
 * 8. The identity is set once, at `welcome`, for the session's whole life: `hello` is refused
 *    `client_taken`, naming the log's identity, when the log binds the clientId to another
 *    subject, and `renew` swaps the token only for one of the same tenant and subject (else
 *    `unauthorized`), re-arming the expiry. Only the answer to the latest renewal counts;
 *    grants change, nothing else does.
 * 9. A welcomed session holds a seat of its tenant; past the tenant's cap `hello` is answered
 *    `overloaded`. `close` releases the seat and clears the expiry timer (both idempotent).
 * 10. The welcome answers the high-water marks of the hello's earlier clientIds (at most
 *    `HELLO_CLIENT_IDS_MAX`) that the log binds to this subject or to no one, and leaves out
 *    another subject's, so a hello learns nothing of other users' devices.
 */
import { isClientId } from '@ledgerline/core'
import {
  ENTRY_DATA_BYTES_MAX,
  FRAME_BYTES_MAX,
  HELLO_CLIENT_IDS_MAX,
  PROTOCOL_VERSION,
  PROTOCOL_VERSION_MIN,
  PUSH_IN_FLIGHT_MAX,
  TOKEN_LENGTH_MAX,
} from '@ledgerline/protocol'
import type { ErrorKind, Grants, LogIdentity, RelayMessage } from '@ledgerline/protocol'
import { isHubError } from './hub/hub-error.ts'
import type { Seat } from './relay-gates.ts'
import type { SessionContext } from './session.ts'
import { BadMessage } from './subscriptions.ts'
import type { RelayTimers, TimerHandle } from './timers.ts'

/** What the session's identity is made of; empty strings and no grants until `welcome`. */
export interface SessionIdentity {
  readonly tenant: string
  readonly subject: string
  readonly grants: Grants
  readonly clientId: string
}

/** What the identity needs of the session that owns it. */
export interface AuthHost {
  /** True while the token of a `hello` is being checked. */
  isChecking(): boolean
  /** True after `welcome`, before close. */
  isReady(): boolean
  /** The session stops taking frames other than into its backlog (invariant 1). */
  startChecking(): void
  /** The token is good and the seat taken: send `welcome` and become ready. */
  welcome(message: RelayMessage): void
  send(message: RelayMessage): void
  /** An error that closes the socket; `overloaded` carries the relay's retry hint. */
  fail(kind: ErrorKind, message: string): void
  /** `client_taken`, naming the log that answered (`ErrorMessage.log`). */
  taken(message: string, log: LogIdentity): void
  overloaded(message: string): void
}

/**
 * The `hello` fields checked before the token is: a tagged union, `BadMessage` for a clientId
 * that is not one (a client bug, not an auth failure).
 *
 * @example
 * checkHello({ type: 'hello', protocol: 2, clientId, token }) // { _tag: 'ok', clientId, token }
 */
export function checkHello(
  m: Record<string, unknown>,
  /** A store hub speaks protocol 3 at least (`PROTOCOL_VERSION_HUB_MIN`). */
  protocolMin: number = PROTOCOL_VERSION_MIN,
):
  | {
      readonly _tag: 'ok'
      readonly clientId: string
      readonly token: string
      /** The hello's earlier clientIds, each once, without the current one. */
      readonly clientIds: readonly string[]
    }
  | { readonly _tag: 'refused'; readonly kind: ErrorKind; readonly message: string } {
  if (typeof m.protocol !== 'number' || m.protocol < protocolMin || m.protocol > PROTOCOL_VERSION) {
    return {
      _tag: 'refused',
      kind: 'unsupported_protocol',
      message: `protocol ${String(m.protocol)} not spoken; this relay speaks ${protocolMin}..${PROTOCOL_VERSION}`,
    }
  }
  if (!isClientId(m.clientId)) throw new BadMessage('hello clientId must be 32 hex digits')
  if (m.token === undefined || m.token === '') {
    return { _tag: 'refused', kind: 'unauthorized', message: 'token missing' }
  }
  if (typeof m.token !== 'string' || m.token.length > TOKEN_LENGTH_MAX) {
    return { _tag: 'refused', kind: 'unauthorized', message: 'token malformed' }
  }
  const earlier = m.clientIds
  if (earlier !== undefined) {
    if (!Array.isArray(earlier) || earlier.length > HELLO_CLIENT_IDS_MAX) {
      throw new BadMessage(`hello clientIds must be an array of at most ${HELLO_CLIENT_IDS_MAX}`)
    }
    if (!earlier.every(isClientId)) throw new BadMessage('hello clientIds must be clientIds')
  }
  const clientIds = [...new Set<string>(earlier ?? [])].filter((id) => id !== m.clientId)
  return { _tag: 'ok', clientId: m.clientId, token: m.token, clientIds }
}

/**
 * @example
 * const auth = new SessionAuth(context, timers, host)
 * auth.hello(message) // later auth.identity.tenant, auth.renew(message), auth.close()
 */
export class SessionAuth {
  readonly #ctx: SessionContext
  readonly #timers: RelayTimers
  readonly #host: AuthHost
  #identity: SessionIdentity = {
    tenant: '',
    subject: '',
    grants: { read: [], write: [] },
    clientId: '',
  }
  /** The renewal whose answer counts; an older one still verifying is ignored. */
  #renewals = 0
  #tenantSeat: Seat | undefined
  #helloClientId: string | undefined
  #log: LogIdentity | undefined
  #expiryTimer: TimerHandle | undefined

  constructor(context: SessionContext, timers: RelayTimers, host: AuthHost) {
    this.#ctx = context
    this.#timers = timers
    this.#host = host
  }

  get identity(): SessionIdentity {
    return this.#identity
  }

  /** The log identity the `welcome` named; undefined before it. */
  get log(): LogIdentity | undefined {
    return this.#log
  }

  /** The clientId the `hello` named (for the logs), welcomed or not; undefined before it. */
  get helloClientId(): string | undefined {
    return this.#helloClientId
  }

  hello(m: Record<string, unknown>): void {
    const checked = checkHello(m, this.#ctx.hub?.protocolMin)
    if (checked._tag === 'refused') {
      this.#host.fail(checked.kind, checked.message)
      return
    }
    const { clientId } = checked
    this.#helloClientId = clientId
    this.#host.startChecking()
    void this.#ctx
      .verify(checked.token)
      .then(async (check) => {
        if (!this.#host.isChecking()) return
        if (check._tag === 'invalid') {
          this.#host.fail(check.kind, check.message)
          return
        }
        const { claims } = check
        const hub = this.#ctx.hub
        const [record, log, ...earlier] = await Promise.all([
          this.#ctx.store.client(claims.tenant, clientId),
          this.#ctx.store.identity(),
          ...checked.clientIds.map((id) => this.#ctx.store.client(claims.tenant, id)),
        ])
        // Invariant 10: only the marks of clientIds this subject may use.
        const clientSeqHighs = checked.clientIds.flatMap((id, i) => {
          const r = earlier[i]
          if (r === undefined || (r.subject !== null && r.subject !== claims.sub)) return []
          return [{ clientId: id, high: r.high }]
        })
        if (!this.#host.isChecking()) return
        if (record.subject !== null && record.subject !== claims.sub) {
          // Invariant 8. The other subject is not named: it is not this token's business. The
          // log is: a client that last saw another log knows the binding may be what was lost.
          this.#host.taken(`clientId ${clientId} belongs to another user of the tenant`, log)
          return
        }
        const seat = this.#ctx.gates.tenant(claims.tenant)
        if (seat === undefined) {
          this.#host.overloaded(`more than ${this.#ctx.limits.tenantConnectionsMax} connections`)
          return
        }
        this.#tenantSeat = seat
        this.#log = log
        this.#identity = {
          tenant: claims.tenant,
          subject: claims.sub,
          grants: claims.grants,
          clientId,
        }
        this.#armExpiry(claims.acceptedUntil)
        this.#host.welcome({
          type: 'welcome',
          protocol: PROTOCOL_VERSION,
          tenant: claims.tenant,
          subject: claims.sub,
          grants: claims.grants,
          // A store hub names head office's log (`log` above), never one of its own.
          ...(hub === undefined
            ? { role: 'head_office' as const }
            : { role: 'hub' as const, upstream: hub.upstream() }),
          log,
          limits: {
            pushEntriesMax: this.#ctx.limits.pushEntriesMax,
            pushBytesMax: FRAME_BYTES_MAX,
            entryDataBytesMax: ENTRY_DATA_BYTES_MAX,
            pushInFlightMax: PUSH_IN_FLIGHT_MAX,
          },
          partitions: this.#ctx.store.partitions,
          // Issue 17: bootstrap and fetch are answered (head office with a schema only).
          ...(this.#ctx.bootstrap === true ? { snapshots: true } : {}),
          clientSeqHigh: record.high,
          ...(checked.clientIds.length === 0 ? {} : { clientSeqHighs }),
          serverTime: this.#timers.now(),
          expiresAt: claims.expiresAt,
        })
      })
      .catch((error: unknown) => {
        if (isHubError(error, 'not_connected')) {
          // A hub that never reached head office has no log to name (`hub/hub-error.ts`).
          this.#host.overloaded(error.message)
          return
        }
        this.#ctx.logger.error({ event: 'internal_error', err: error }, 'hello failed')
        this.#host.fail('internal', 'could not read the log')
      })
  }

  /** Invariant 8: the same tenant and subject, a new expiry; nothing else of the session moves. */
  renew(m: Record<string, unknown>): void {
    if (typeof m.token !== 'string' || m.token === '' || m.token.length > TOKEN_LENGTH_MAX) {
      throw new BadMessage('renew needs a token')
    }
    const renewal = ++this.#renewals
    void this.#ctx
      .verify(m.token)
      .then((check) => {
        if (!this.#host.isReady() || renewal !== this.#renewals) return
        if (check._tag === 'invalid') {
          this.#host.fail(check.kind, `renew: ${check.message}`)
          return
        }
        const { claims } = check
        if (claims.tenant !== this.#identity.tenant || claims.sub !== this.#identity.subject) {
          this.#host.fail('unauthorized', 'renew needs a token of the same tenant and subject')
          return
        }
        this.#identity = { ...this.#identity, grants: claims.grants }
        this.#timers.clear(this.#expiryTimer)
        this.#armExpiry(claims.acceptedUntil)
        this.#host.send({ type: 'renewed', expiresAt: claims.expiresAt, grants: claims.grants })
      })
      .catch((error: unknown) => {
        this.#ctx.logger.error({ event: 'internal_error', err: error }, 'renew failed')
        this.#host.fail('internal', 'could not check the token')
      })
  }

  /** Invariant 9: gives the seat back and stops the expiry timer. */
  close(): void {
    this.#timers.clear(this.#expiryTimer)
    this.#tenantSeat?.release()
  }

  #armExpiry(expiresAt: number): void {
    const delay = expiresAt - this.#timers.now()
    // setTimeout holds at most 2^31-1 ms; re-arm for tokens that live longer than ~24 days.
    this.#expiryTimer = this.#timers.set(
      () => {
        if (this.#timers.now() >= expiresAt) this.#host.fail('token_expired', 'token expired')
        else this.#armExpiry(expiresAt)
      },
      Math.max(0, Math.min(delay, 2 ** 31 - 1)),
    )
  }
}
