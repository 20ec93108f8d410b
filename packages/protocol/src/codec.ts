/**
 * Encoding and decoding of wire messages over MessagePack.
 *
 *   bytes ──size──► scanFrame ──► MessagePack decode (bounded) ──► validateMessage ──► Message
 *
 * Invariants:
 * 1. `decodeMessage` returns a valid `Message` or throws `ProtocolError`, whatever the bytes:
 *    never another exception, never a hang (every step is linear in the frame size, and the
 *    frame is at most `FRAME_BYTES_MAX`).
 * 2. A frame over `FRAME_BYTES_MAX` is refused (`too_large`) before a byte of it is read.
 * 3. No decoded object has a tampered prototype: the decoder refuses `__proto__` keys, and
 *    `validateMessage` copies known fields into fresh objects (unknown fields are dropped).
 * 4. `encodeMessage` leaves out `undefined` optional fields and keeps `Uint8Array` data as
 *    MessagePack binaries, so `decodeMessage(encodeMessage(m))` deep-equals `m` for every valid
 *    `m` (with one MessagePack caveat: `-0` encodes as the integer `0`).
 * 5. `encodeMessage` refuses (`too_large`) to make a frame the peer would refuse.
 */
import { Decoder, Encoder } from '@msgpack/msgpack'
import { scanFrame } from './frame-scan.ts'
import { ENTRY_DATA_BYTES_MAX, FRAME_BYTES_MAX, FRAME_DEPTH_MAX } from './limits.ts'
import type { Message } from './messages.ts'
import { ProtocolError } from './protocol-error.ts'
import { validateMessage } from './validate.ts'

export { ProtocolError, isProtocolError } from './protocol-error.ts'

/**
 * Encodes a message as one binary WebSocket frame. Throws `ProtocolError` (`too_large`) when the
 * frame would exceed `FRAME_BYTES_MAX`, or (`bad_message`) when the message holds something
 * MessagePack cannot carry. It does not validate fields: call `validateMessage` for that.
 *
 * @example
 * encodeMessage({ type: 'ping', t: 1 }) // Uint8Array [0x82, 0xa4, 0x74, 0x79, 0x70, 0x65, …]
 */
export function encodeMessage(message: Message): Uint8Array {
  let bytes: Uint8Array
  try {
    bytes = encoder.encode(message)
  } catch (error) {
    throw new ProtocolError('bad_message', `message cannot be encoded: ${describe(error)}`, {
      cause: error,
    })
  }
  if (bytes.byteLength > FRAME_BYTES_MAX) {
    throw new ProtocolError(
      'too_large',
      `${message.type} frame is ${bytes.byteLength} bytes, over FRAME_BYTES_MAX (${FRAME_BYTES_MAX})`,
    )
  }
  // The peer scans every frame; scanning here too means we never send one it would refuse.
  scanFrame(bytes)
  return bytes
}

/**
 * Decodes and validates one frame. Throws `ProtocolError` for any byte string that is not a
 * valid message, with a `kind` of `bad_message` or `too_large` and a message naming the field.
 *
 * @example
 * decodeMessage(encodeMessage({ type: 'pong', t: 7 })) // { type: 'pong', t: 7 }
 */
export function decodeMessage(bytes: Uint8Array | ArrayBuffer): Message {
  try {
    const frame = bytes instanceof ArrayBuffer ? new Uint8Array(bytes) : bytes
    if (!(frame instanceof Uint8Array)) {
      throw new ProtocolError('bad_message', 'frame must be a Uint8Array or an ArrayBuffer')
    }
    if (frame.byteLength > FRAME_BYTES_MAX) {
      throw new ProtocolError(
        'too_large',
        `frame is ${frame.byteLength} bytes, over FRAME_BYTES_MAX (${FRAME_BYTES_MAX})`,
      )
    }
    if (frame.byteLength === 0) throw new ProtocolError('bad_message', 'frame is empty')
    scanFrame(frame)
    return validateMessage(decoder.decode(frame))
  } catch (error) {
    if (error instanceof ProtocolError) throw error
    // The scan leaves little for the decoder to object to (a `__proto__` key, a map key that is
    // not a string or number), but whatever it is, it is a bad frame, not a crash.
    throw new ProtocolError('bad_message', `frame is not a valid message: ${describe(error)}`, {
      cause: error,
    })
  }
}

const encoder = new Encoder({ ignoreUndefined: true, maxDepth: FRAME_DEPTH_MAX })

// Bounds again what `scanFrame` already checked, so the decoder is safe on its own too.
const decoder = new Decoder({
  maxStrLength: ENTRY_DATA_BYTES_MAX,
  maxBinLength: ENTRY_DATA_BYTES_MAX,
  maxArrayLength: FRAME_BYTES_MAX,
  maxMapLength: FRAME_BYTES_MAX,
  maxExtLength: 0,
})

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}
