// Goal: issue 13 case 13 — acks count towards a socket's unsent bytes like pages and live entries
// do, so a client that pushes and stops reading is cut as a slow consumer (4408) instead of
// making the relay queue its acks without bound (on 3a8bfae four such clients took a relay from
// 74 MB to over 600 MB in 15 s, over 100 MiB queued per socket, and none was cut).
// Method: a relay (SQLite) with `bufferedBytesMax` lowered to 256 KiB. The hog says hello, pauses
// its socket (`ws.pause()`: the kernel buffers fill, then the relay's queue grows), and pushes
// batches of 500 oversold sales (each ack result carries its correction), keeping at most two
// batches uncommitted (it cannot read acks, so it watches the log's high-water mark). Within
// PUSHES_MAX batches (far more than the kernel buffers hold) the relay must cut it. A bystander's
// pushes are acked meanwhile.
import { afterEach, describe, expect, it } from 'vitest'
import {
  makeEntry,
  pushAcked,
  relayLimits,
  startEdgeRelay,
  TENANT,
  token,
} from './edges.test-helper.ts'
import { openClient, sleep } from './wire-client.test-helper.ts'

const BATCH = 500
const PUSHES_MAX = 400
const SLOW_CONSUMER_CLOSE_CODE = 4408
/** No commit of the hog's pushes for this long: the relay stopped taking them (cut it). */
const STALL_MS = 3_000

const cleanups: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

describe('issue 13 case 13: acks and the slow-consumer cut', () => {
  it('cuts a client that pushes and never reads its acks', async () => {
    const relay = await startEdgeRelay('sqlite', {
      limits: relayLimits({ bufferedBytesMax: 256 * 1024 }),
    })
    cleanups.push(() => relay.close())
    const hogId = 'f0'.repeat(16)
    const hog = await openClient(relay.url, { clientId: hogId })
    cleanups.push(() => hog.ws.terminate())
    expect((await hog.hello(await token({ sub: 'hog' }))).type).toBe('welcome')
    let cut: number | undefined
    void hog.closed.then(({ code }) => (cut = code))
    hog.ws.pause()

    const bystanderId = 'b5'.repeat(16)
    const bystander = await openClient(relay.url, { clientId: bystanderId })
    cleanups.push(() => bystander.close())
    expect((await bystander.hello(await token({ sub: 'bystander' }))).type).toBe('welcome')
    let bystanderSeq = 0
    let bystanderAcks = 0

    let pushes = 0
    let progressAt = Date.now()
    let committedBefore = 0
    while (pushes < PUSHES_MAX) {
      // At most two batches uncommitted (the relay allows PUSH_IN_FLIGHT_MAX). A relay that cut
      // the hog commits nothing more: the paused socket cannot tell, the log can.
      const committed = (await relay.store.client(TENANT, hogId)).high
      if (committed > committedBefore) {
        committedBefore = committed
        progressAt = Date.now()
      }
      if (pushes * BATCH - committed >= 2 * BATCH) {
        if (Date.now() - progressAt > STALL_MS) break
        await sleep(2)
        continue
      }
      const entries = Array.from({ length: BATCH }, (_, i) =>
        makeEntry(hogId, pushes * BATCH + i + 1, `stock/hog-${pushes}`, 'stock.moved', {
          qty: -1,
          i,
        }),
      )
      hog.send({ type: 'push', batch: pushes + 1, entries })
      pushes++
      if (pushes % 20 === 0) {
        bystanderSeq++
        const results = await pushAcked(bystander, bystanderSeq, [
          makeEntry(bystanderId, bystanderSeq, 'order/calm', 'order.line', { n: bystanderSeq }),
        ])
        if (results[0]?.status === 'appended') bystanderAcks++
      }
    }
    // Give a cut in flight the time to arrive (the socket is paused: `close` needs a resume).
    hog.ws.resume()
    const deadline = Date.now() + 10_000
    while (cut === undefined && Date.now() < deadline) await sleep(20)
    expect(cut, `close code after ${pushes} pushes of ${BATCH} (undefined: never cut)`).toBe(
      SLOW_CONSUMER_CLOSE_CODE,
    )
    expect(pushes).toBeLessThan(PUSHES_MAX)
    expect(bystanderAcks).toBe(bystanderSeq)
  }, 120_000)
})
