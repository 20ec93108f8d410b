/**
 * The frames one sync connection sends: messages encoded, `entries` and `snapshots` pages spliced
 * from their items' bytes encoded once (`page-frames.ts`), errors, and the slow-consumer check in front of
 * all but errors. The session (`session.ts`) owns the socket's state and decides when to fail;
 * this module owns what goes out on the socket and counts it.
 *
 * Terms: the socket's *unsent bytes* are its `bufferedAmount`, what it queued and did not yet
 * hand to the network; a *slow consumer* is a socket whose unsent bytes passed
 * `bufferedBytesMax`.
 *
 * Invariants (numbered as in `session.ts`):
 * 4. Every frame but an error passes the slow-consumer check first, acks and pages alike: past
 *    `bufferedBytesMax` unsent bytes the session fails `slow_consumer` and the frame is not sent.
 *    An error is written without the check (it is the session's last frame). Nothing is written
 *    to a socket that is not open, and every byte written is counted (`bytesOut`). A message
 *    that cannot be encoded is logged and fails the session `internal`, unless it was an error.
 */
import { encodeMessage, ERROR_KINDS, MESSAGE_LENGTH_MAX } from '@ledgerline/protocol'
import type { ErrorKind, LogIdentity, RelayMessage } from '@ledgerline/protocol'
import { encodeEntriesPage } from './fanout-tail.ts'
import type { EncodedEntry } from './fanout-tail.ts'
import { encodeSnapshotsPage } from './page-frames.ts'
import type { EncodedSnapshot } from './page-frames.ts'
import type { SessionContext, SessionSocket } from './session.ts'

/** What the sender needs of the session that owns it. */
export interface SendHost {
  /** An error that closes the socket. */
  fail(kind: ErrorKind, message: string): void
}

export class SessionSender {
  readonly #ws: SessionSocket
  readonly #ctx: SessionContext
  readonly #host: SendHost

  constructor(ws: SessionSocket, context: SessionContext, host: SendHost) {
    this.#ws = ws
    this.#ctx = context
    this.#host = host
  }

  send(message: RelayMessage): void {
    if (this.#ws.readyState !== this.#ws.OPEN) return
    let bytes: Uint8Array
    try {
      bytes = encodeMessage(message)
    } catch (error) {
      this.#ctx.logger.error(
        { event: 'internal_error', err: error, type: message.type },
        'cannot encode a message',
      )
      if (message.type !== 'error') this.#host.fail('internal', `cannot send ${message.type}`)
      return
    }
    if (message.type === 'error') this.#write(bytes)
    else this.sendBytes(bytes)
  }

  /** An `entries` page, spliced from the entries' shared bytes (`encodeEntriesPage`). */
  sendEntries(
    sub: number,
    page: readonly EncodedEntry[],
    cursors: Record<number, number>,
    live: boolean,
  ): void {
    this.#sendSpliced('entries', () => encodeEntriesPage(sub, page, cursors, live))
  }

  /** A bootstrap's `snapshots` page, spliced from the bytes its size was measured with. */
  sendSnapshots(sub: number, page: readonly EncodedSnapshot[]): void {
    this.#sendSpliced('snapshots', () => encodeSnapshotsPage(sub, page))
  }

  #sendSpliced(type: 'entries' | 'snapshots', encode: () => Uint8Array): void {
    if (this.#ws.readyState !== this.#ws.OPEN) return
    let bytes: Uint8Array
    try {
      bytes = encode()
    } catch (error) {
      this.#ctx.logger.error(
        { event: 'internal_error', err: error, type },
        'cannot encode a message',
      )
      this.#host.fail('internal', `cannot send ${type}`)
      return
    }
    this.sendBytes(bytes)
  }

  /** Invariant 4: every frame but an error passes the slow-consumer check first. */
  sendBytes(bytes: Uint8Array): boolean {
    if (this.#ws.readyState !== this.#ws.OPEN || this.isSlow()) return false
    this.#write(bytes)
    return true
  }

  /** True (and the session closing) when the socket's unsent bytes passed the cap. */
  isSlow(): boolean {
    const max = this.#ctx.limits.bufferedBytesMax
    if (this.#ws.bufferedAmount <= max) return false
    this.#host.fail('slow_consumer', `more than ${max} bytes queued`)
    return true
  }

  /** `log`: the log that answered, sent with `client_taken` (`ErrorMessage.log`). */
  sendError(kind: ErrorKind, message: string, backoffMsMin?: number, log?: LogIdentity): void {
    this.send({
      type: 'error',
      kind,
      message: message.slice(0, MESSAGE_LENGTH_MAX),
      backoffMsMin: backoffMsMin ?? ERROR_KINDS[kind].backoffMsMin,
      ...(log === undefined ? {} : { log }),
    })
  }

  #write(bytes: Uint8Array): void {
    if (this.#ws.readyState !== this.#ws.OPEN) return
    this.#ctx.metrics.bytesOut(bytes.byteLength)
    this.#ws.send(bytes)
  }
}
