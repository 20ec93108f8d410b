// Goal: issue 12 case 3 — a clientId belongs to the token subject that first appended under it
// (guarantee 9: no client can act under another device's clientId). Any user of the tenant can
// read a till's clientId from the entry ids it receives; on 3a8bfae such a user says `hello` with
// it, reads `clientSeqHigh` from `welcome`, and pushes the next clientSeqs: without a write grant
// they are refused `forbidden` and recorded (the till's own sales with those seqs come back
// refused), with one they are appended and the till's sales come back `duplicate` and vanish.
// Here the impostor's hello is refused `client_taken` (close 4409), nothing is recorded, and the
// real till's sales land; a push that races past the hello records nothing either.
// Method: the real relay on SQLite and PostgreSQL, wire clients (`ws` + the protocol codec).
import { describe, expect, it } from 'vitest'
import {
  CLIENT_TAKEN,
  CLIENT_TAKEN_CLOSE_CODE,
  clientRecord,
  errorKindOf,
  LOG_KINDS,
  makeEntry,
  pushAcked,
  pushBatch,
  TENANT,
  token,
  useEdgeRelays,
} from './edges.test-helper.ts'
import { openClient } from './wire-client.test-helper.ts'

const TILL = '7e'.repeat(16)
const edge = useEdgeRelays()

describe.each(LOG_KINDS)('issue 12 case 3: a clientId is bound to its subject (%s)', (kind) => {
  for (const grant of ['without', 'with'] as const) {
    it(`refuses an impostor ${grant} a write grant at hello; nothing recorded; the till's sales land`, async () => {
      const relay = await edge.start(kind)
      const till = await edge.connect(relay.url, TILL, { sub: 'till-1' })
      expect((await pushAcked(till, 1, sales(1, 2))).map((r) => r.status)).toEqual([
        'appended',
        'appended',
      ])

      const impostor = await openClient(relay.url, { clientId: TILL })
      edge.defer(() => impostor.close())
      const answer = await impostor.hello(
        await token({ sub: 'intruder', write: grant === 'with' ? ['*'] : [] }),
      )
      expect(errorKindOf(answer), `the impostor's hello got ${answer.type}`).toBe(CLIENT_TAKEN)
      // The log that answered, so a till that last saw another log can tell a lost binding.
      expect(answer).toMatchObject({ log: await relay.store.identity() })
      expect((await impostor.closed).code).toBe(CLIENT_TAKEN_CLOSE_CODE)

      expect((await pushAcked(till, 2, sales(3, 4))).map((r) => r.status)).toEqual([
        'appended',
        'appended',
      ])
      const ledger = await relay.store.readEntity(TENANT, 'order/o3', 1, 100)
      expect(ledger.map((e) => e.data)).toEqual([1, 2, 3, 4].map((sale) => ({ sale })))
      expect(await clientRecord(relay.store, TENANT, TILL)).toEqual({ high: 4, subject: 'till-1' })
    })
  }

  it('a push racing past the hello (both welcomed while the clientId was unbound) records nothing', async () => {
    // Method: two subjects say hello with one fresh clientId before it appended anything; the
    // first append binds it. The other's push must not be recorded (its session closes with
    // client_taken), so the till's clientSeq 2 is still its own.
    const relay = await edge.start(kind)
    const till = await edge.connect(relay.url, TILL, { sub: 'till-1' })
    const impostor = await edge.connect(relay.url, TILL, { sub: 'intruder' })
    expect((await pushAcked(till, 1, sales(1, 1))).map((r) => r.status)).toEqual(['appended'])

    const raced = await pushBatch(impostor, 1, [
      makeEntry(TILL, 2, 'order/o3', 'order.line', { sale: 'forged' }),
    ])
    expect(raced._tag === 'error' ? errorKindOf(raced.error) : JSON.stringify(raced)).toBe(
      CLIENT_TAKEN,
    )
    expect(raced._tag === 'error' ? raced.error : undefined).toMatchObject({
      log: await relay.store.identity(),
    })
    expect((await impostor.closed).code).toBe(CLIENT_TAKEN_CLOSE_CODE)
    expect((await pushAcked(till, 2, sales(2, 2))).map((r) => r.status)).toEqual(['appended'])
    const ledger = await relay.store.readEntity(TENANT, 'order/o3', 1, 100)
    expect(ledger.map((e) => e.data)).toEqual([{ sale: 1 }, { sale: 2 }])
    expect(await clientRecord(relay.store, TENANT, TILL)).toEqual({ high: 2, subject: 'till-1' })
  })
})

describe.each(LOG_KINDS)('issue 14: the marks of earlier clientIds in welcome (%s)', (kind) => {
  it("answers the marks of the subject's own and unbound earlier clientIds, never another subject's", async () => {
    // Goal: restore recovery learns what the log holds of a database's earlier clientIds
    // (finding A) without a hello learning anything of another user's device (guarantee 9).
    // Method: till-1 appends two sales under TILL; a hello of till-1 under a new clientId names
    // TILL and an unused id: both answered. The intruder's hello naming the same ids gets only
    // the unused one's mark.
    const relay = await edge.start(kind)
    const till = await edge.connect(relay.url, TILL, { sub: 'till-1' })
    await pushAcked(till, 1, sales(1, 2))
    const unused = '5a'.repeat(16)
    const again = await openClient(relay.url, { clientId: '6b'.repeat(16) })
    edge.defer(() => again.close())
    const welcome = await again.hello(await token({ sub: 'till-1' }), [TILL, unused])
    expect(welcome).toMatchObject({
      type: 'welcome',
      clientSeqHighs: [
        { clientId: TILL, high: 2 },
        { clientId: unused, high: 0 },
      ],
    })
    const intruder = await openClient(relay.url, { clientId: '7c'.repeat(16) })
    edge.defer(() => intruder.close())
    const theirs = await intruder.hello(await token({ sub: 'intruder' }), [TILL, unused])
    expect(theirs).toMatchObject({
      type: 'welcome',
      clientSeqHighs: [{ clientId: unused, high: 0 }],
    })
  })
})

/** The till's sales `from..to` of order/o3, at clientSeq = sale number. */
function sales(from: number, to: number) {
  return Array.from({ length: to - from + 1 }, (_, i) =>
    makeEntry(TILL, from + i, 'order/o3', 'order.line', { sale: from + i }),
  )
}
