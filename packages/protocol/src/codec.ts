/**
 * Encoding and decoding of wire messages over MessagePack.
 * (Being written: validation of every field lands with the codec tests.)
 */
import { decode, encode } from '@msgpack/msgpack'
import type { ErrorKind } from './error-kind.ts'
import type { Message } from './messages.ts'

export class ProtocolError extends Error {
  readonly kind: ErrorKind
  constructor(kind: ErrorKind, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'ProtocolError'
    this.kind = kind
  }
}

export function encodeMessage(message: Message): Uint8Array {
  return encode(message, { ignoreUndefined: true })
}

export function decodeMessage(bytes: Uint8Array): Message {
  try {
    return decode(bytes) as Message
  } catch (error) {
    throw new ProtocolError('bad_message', 'frame is not MessagePack', { cause: error })
  }
}
