// Goal: a binary frame's bytes, in whatever form the runtime hands them over (Uint8Array,
// ArrayBuffer, another view, `ws`'s list of fragments), and a text frame refused; closing a
// socket that throws on close is quiet.
// Method: each form built by hand.
import { describe, expect, it } from 'vitest'
import type { WebSocketLike } from './transport.ts'
import { closeQuietly, frameBytes } from './transport.ts'

describe('transport', () => {
  it('reads the bytes of a frame in every form a runtime gives it', () => {
    const bytes = new Uint8Array([1, 2, 3, 4, 5])
    expect(frameBytes(bytes)).toBe(bytes)
    expect([...frameBytes(bytes.buffer)]).toEqual([1, 2, 3, 4, 5])
    expect([...frameBytes(new DataView(bytes.buffer, 1, 3))]).toEqual([2, 3, 4])
    expect([...frameBytes([bytes.subarray(0, 2), bytes.subarray(2)])]).toEqual([1, 2, 3, 4, 5])
    expect(() => frameBytes('text')).toThrow(/text frames/)
  })

  it('closes quietly a socket that throws on close', () => {
    const ws = {
      close: () => {
        throw new Error('never opened')
      },
    } as unknown as WebSocketLike
    expect(() => closeQuietly(ws)).not.toThrow()
  })
})
