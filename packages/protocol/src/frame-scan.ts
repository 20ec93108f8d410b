/**
 * A structural pre-scan of a MessagePack frame, before anything is allocated for it.
 *
 * The MessagePack decoder would happily build a 100 000-deep array, preallocate an array for a
 * header that claims four billion items, or turn an extension into a `Date`. This scan walks the
 * frame's headers once, iteratively (no recursion, so no stack to overflow), and refuses:
 *
 * 1. nesting deeper than `FRAME_DEPTH_MAX` (the outermost map is depth 1);
 * 2. any extension type (`fixext`, `ext 8/16/32`) and the never-used byte `0xc1`;
 * 3. a string or binary longer than `ENTRY_DATA_BYTES_MAX` (`too_large`): no field of any
 *    message may be longer than the largest entry data;
 * 4. a header that claims more bytes or items than the frame has left (truncation), so no
 *    container is ever preallocated beyond the frame's size;
 * 5. bytes after the first value.
 *
 * It runs in time linear in the frame size and allocates one small stack of counters.
 */
import { ENTRY_DATA_BYTES_MAX, FRAME_DEPTH_MAX } from './limits.ts'
import { ProtocolError } from './protocol-error.ts'

/**
 * Throws `ProtocolError` unless `bytes` is one MessagePack value within the limits above.
 *
 * @example
 * scanFrame(new Uint8Array([0x81, 0xa1, 0x74, 0x01])) // { t: 1 }: passes
 */
export function scanFrame(bytes: Uint8Array): void {
  const end = bytes.byteLength
  let pos = 0
  // Items still to read in each open container; the first counts the one top-level value.
  const open: number[] = [1]

  const need = (n: number): void => {
    if (n > end - pos) {
      throw new ProtocolError('bad_message', `frame is truncated: needs ${n} bytes at ${pos}`)
    }
  }
  const u8 = (): number => {
    need(1)
    return bytes[pos++] as number
  }
  const u16 = (): number => (u8() << 8) | u8()
  const u32 = (): number => u16() * 0x10000 + u16()

  while (open.length > 0) {
    const top = open.length - 1
    if (open[top] === 0) {
      open.pop()
      continue
    }
    open[top] = (open[top] as number) - 1
    const at = pos
    const head = u8()
    let skip = 0
    let items = -1
    let sized = false
    if (head <= 0x7f || head >= 0xe0) {
      // positive or negative fixint: the head is the value
    } else if (head <= 0x8f) items = (head & 0x0f) * 2
    else if (head <= 0x9f) items = head & 0x0f
    else if (head <= 0xbf) {
      skip = head & 0x1f
    } else {
      switch (head) {
        case 0xc0: // nil
        case 0xc2: // false
        case 0xc3: // true
          break
        case 0xc4: // bin 8
        case 0xd9: // str 8
          skip = u8()
          sized = true
          break
        case 0xc5: // bin 16
        case 0xda: // str 16
          skip = u16()
          sized = true
          break
        case 0xc6: // bin 32
        case 0xdb: // str 32
          skip = u32()
          sized = true
          break
        case 0xcc: // uint 8
        case 0xd0: // int 8
          skip = 1
          break
        case 0xcd: // uint 16
        case 0xd1: // int 16
          skip = 2
          break
        case 0xca: // float 32
        case 0xce: // uint 32
        case 0xd2: // int 32
          skip = 4
          break
        case 0xcb: // float 64
        case 0xcf: // uint 64
        case 0xd3: // int 64
          skip = 8
          break
        case 0xdc: // array 16
          items = u16()
          break
        case 0xdd: // array 32
          items = u32()
          break
        case 0xde: // map 16
          items = u16() * 2
          break
        case 0xdf: // map 32
          items = u32() * 2
          break
        case 0xc1:
          throw new ProtocolError('bad_message', `frame has the never-used byte 0xc1 at ${at}`)
        default:
          // 0xc7..0xc9 and 0xd4..0xd8: extension types carry no Ledgerline value.
          throw new ProtocolError(
            'bad_message',
            `frame has a MessagePack extension type at ${at}; none are allowed`,
          )
      }
    }
    if (sized && skip > ENTRY_DATA_BYTES_MAX) {
      throw new ProtocolError(
        'too_large',
        `frame has a string or binary of ${skip} bytes at ${at}, over ENTRY_DATA_BYTES_MAX (${ENTRY_DATA_BYTES_MAX})`,
      )
    }
    need(skip)
    pos += skip
    if (items >= 0) {
      if (open.length > FRAME_DEPTH_MAX) {
        throw new ProtocolError(
          'bad_message',
          `frame nests deeper than FRAME_DEPTH_MAX (${FRAME_DEPTH_MAX}) at ${at}`,
        )
      }
      // Every item takes at least one byte: a header claiming more is a lie, refused before
      // the decoder would preallocate for it.
      if (items > end - pos) {
        throw new ProtocolError(
          'bad_message',
          `frame is truncated: container at ${at} claims ${items} items, ${end - pos} bytes left`,
        )
      }
      if (items > 0) open.push(items)
    }
  }
  if (pos !== end) {
    throw new ProtocolError('bad_message', `frame has ${end - pos} bytes after the message`)
  }
}
