// Goal: ack-parts.ts invariants — an ack that would pass a frame is cut into parts that each fit,
// answer every entry once and in order, only the last `done`; correction references leave only
// for entities the pusher may read, with exactly their six fields. Method: results made by hand
// (500 refused entries with long reasons, appended ones with 16 references each), decoded back.
import { describe, expect, it } from 'vitest'
import { ACK_CORRECTIONS_MAX, decodeMessage, FRAME_BYTES_MAX } from '@ledgerline/protocol'
import type { AckMessage, AckResult } from '@ledgerline/protocol'
import { encodeAckParts, readableRefs } from './ack-parts.ts'

const CLIENT = 'a1'.repeat(16)

describe('acks in parts', () => {
  it('sends a small ack as one frame', () => {
    const frames = encodeAckParts(3, [appended(1, 0)])
    expect(frames).toHaveLength(1)
    expect(decode(frames[0])).toMatchObject({ batch: 3, first: 0, done: true })
  })

  it('cuts an ack over a frame into parts that fit, answer every entry once, in order', () => {
    // 500 results of about 3.4 KB each (16 references and a long reason) make some 1.7 MB.
    const results = Array.from({ length: 500 }, (_, i) => appended(i + 1, ACK_CORRECTIONS_MAX))
    const frames = encodeAckParts(9, results)
    expect(frames.length).toBeGreaterThan(1)
    const parts = frames.map((f) => decode(f))
    for (const f of frames) expect(f.byteLength).toBeLessThanOrEqual(FRAME_BYTES_MAX)
    let next = 0
    for (const [i, part] of parts.entries()) {
      expect(part.first).toBe(next)
      expect(part.done).toBe(i === parts.length - 1)
      next += part.results.length
    }
    expect(parts.flatMap((p) => p.results.map((r) => r.id))).toEqual(results.map((r) => r.id))
  })

  it('cuts by a smaller frame bound too, down to one result per part', () => {
    const results = Array.from({ length: 8 }, (_, i) => appended(i + 1, 4))
    const one = encodeAckParts(1, results).map((f) => f.byteLength)[0] as number
    const frames = encodeAckParts(1, results, Math.ceil(one / 5))
    expect(frames.length).toBeGreaterThanOrEqual(5)
    expect(frames.flatMap((f) => decode(f).results).map((r) => r.id)).toEqual(
      results.map((r) => r.id),
    )
  })

  it('names only corrections of readable entities, with six fields each', () => {
    const result = {
      ...appended(1, 0),
      corrections: [
        { ...ref(1, 'stock/s7:espresso'), data: { big: 'x'.repeat(1000) } } as never,
        ref(2, 'order/o1'),
      ],
    }
    const [cut] = readableRefs([result], ['order/*'])
    expect(cut).toEqual({ ...result, corrections: [ref(2, 'order/o1')] })
    const [all] = readableRefs([result], ['*'])
    expect(all?.status === 'appended' && all.corrections.map((c) => Object.keys(c))).toEqual([
      ['id', 'entity', 'kind', 'version', 'partition', 'offset'],
      ['id', 'entity', 'kind', 'version', 'partition', 'offset'],
    ])
  })
})

function decode(frame: Uint8Array | undefined): AckMessage {
  return decodeMessage(frame as Uint8Array) as AckMessage
}

function appended(
  seq: number,
  refs: number,
): Extract<AckResult, { status: 'appended' | 'duplicate' }> {
  return {
    id: `${CLIENT}-${seq}`,
    status: 'appended',
    version: seq,
    partition: 3,
    offset: seq,
    committedAt: 1_700_000_000_000,
    corrections: Array.from({ length: refs }, (_, i) => ref(i, `stock/s7:item-${'z'.repeat(150)}`)),
  }
}

function ref(i: number, entity: string) {
  return {
    id: `${CLIENT}-1~nonnegative~${i}`,
    entity,
    kind: 'stock.oversold',
    version: i + 1,
    partition: 2,
    offset: 100 + i,
  }
}
