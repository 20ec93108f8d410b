// Goal: scanFrame accepts nesting up to FRAME_DEPTH_MAX and refuses one level more, and agrees
// with the encoder: whatever encodeMessage produces, the scan accepts. Method: frames built
// byte by byte at the boundary, and a structure encoded just within the limit.
import { encode } from '@msgpack/msgpack'
import { describe, expect, it } from 'vitest'
import { scanFrame } from './frame-scan.ts'
import { FRAME_DEPTH_MAX } from './limits.ts'
import { ProtocolError } from './protocol-error.ts'

const nested = (levels: number) =>
  Uint8Array.from([...Array.from({ length: levels }, () => 0x91), 0x01])

describe('scanFrame', () => {
  it('accepts FRAME_DEPTH_MAX levels and refuses one more', () => {
    expect(() => scanFrame(nested(FRAME_DEPTH_MAX))).not.toThrow()
    expect(() => scanFrame(nested(FRAME_DEPTH_MAX + 1))).toThrow(ProtocolError)
    // An empty container counts as a level too.
    const emptyAtLimit = Uint8Array.from([
      ...Array.from({ length: FRAME_DEPTH_MAX }, () => 0x91),
      0x90,
    ])
    expect(() => scanFrame(emptyAtLimit)).toThrow(
      `deeper than FRAME_DEPTH_MAX (${FRAME_DEPTH_MAX})`,
    )
  })

  it('accepts every MessagePack scalar form', () => {
    const scalars = [
      null,
      true,
      false,
      0,
      127,
      -32,
      255,
      65_535,
      2 ** 32 - 1,
      2 ** 40,
      -129,
      -(2 ** 40),
      1.5,
      'x'.repeat(300),
      new Uint8Array(70_000).subarray(0, 300),
    ]
    expect(() => scanFrame(encode(scalars))).not.toThrow()
    expect(() => scanFrame(encode({ a: 'x'.repeat(40), b: new Uint8Array(300) }))).not.toThrow()
  })

  it('refuses a frame with two values', () => {
    expect(() => scanFrame(Uint8Array.from([0x01, 0x02]))).toThrow('1 bytes after the message')
  })
})
