// Goal: the checks of a `hello` made before its token is verified (`session-auth.ts`
// invariant 1): an unspoken protocol and a missing or malformed token are refused with the kind
// the client acts on, a bad clientId is a bad frame. Method: one hello per case. Verification,
// seats and renewal over the wire are covered by `renew.test.ts`, `tokens.test.ts` and
// `relay-limits.test.ts`.
import { describe, expect, it } from 'vitest'
import {
  HELLO_CLIENT_IDS_MAX,
  PROTOCOL_VERSION,
  PROTOCOL_VERSION_MIN,
  TOKEN_LENGTH_MAX,
} from '@ledgerline/protocol'
import { checkHello } from './session-auth.ts'
import { BadMessage } from './subscriptions.ts'

const clientId = '7c'.repeat(16)
const hello = (fields: Record<string, unknown>) => ({
  type: 'hello',
  protocol: PROTOCOL_VERSION,
  clientId,
  token: 't',
  ...fields,
})

describe('checkHello', () => {
  it('accepts every spoken protocol with a clientId and a token', () => {
    for (let protocol = PROTOCOL_VERSION_MIN; protocol <= PROTOCOL_VERSION; protocol++) {
      expect(checkHello(hello({ protocol }))).toEqual({
        _tag: 'ok',
        clientId,
        token: 't',
        clientIds: [],
      })
    }
  })

  it("takes the hello's earlier clientIds, each once, without its own; refuses more than HELLO_CLIENT_IDS_MAX", () => {
    // Issue 14: the welcome answers their marks (a bounded number of reads per hello).
    const other = 'b'.repeat(32)
    expect(checkHello(hello({ clientIds: [other, clientId, other] }))).toMatchObject({
      _tag: 'ok',
      clientIds: [other],
    })
    const many = Array.from({ length: HELLO_CLIENT_IDS_MAX + 1 }, (_, i) =>
      i.toString(16).padStart(32, '0'),
    )
    expect(() => checkHello(hello({ clientIds: many }))).toThrow(/at most/)
    expect(() => checkHello(hello({ clientIds: ['nope'] }))).toThrow(/clientIds/)
  })

  it('refuses protocols outside the spoken range as unsupported_protocol', () => {
    for (const protocol of [PROTOCOL_VERSION_MIN - 1, PROTOCOL_VERSION + 1, '2', undefined]) {
      expect(checkHello(hello({ protocol }))).toMatchObject({
        _tag: 'refused',
        kind: 'unsupported_protocol',
      })
    }
  })

  it('refuses a missing or malformed token as unauthorized', () => {
    expect(checkHello(hello({ token: undefined }))).toEqual({
      _tag: 'refused',
      kind: 'unauthorized',
      message: 'token missing',
    })
    expect(checkHello(hello({ token: '' }))).toMatchObject({ message: 'token missing' })
    expect(checkHello(hello({ token: 42 }))).toMatchObject({ message: 'token malformed' })
    expect(checkHello(hello({ token: 'x'.repeat(TOKEN_LENGTH_MAX + 1) }))).toMatchObject({
      kind: 'unauthorized',
      message: 'token malformed',
    })
  })

  it('throws BadMessage for a clientId that is not 32 hex digits', () => {
    expect(() => checkHello(hello({ clientId: 'nope' }))).toThrow(BadMessage)
  })
})
