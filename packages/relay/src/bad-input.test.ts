// Goal: guarantee 10 at the relay: every kind of bad input gets its documented error kind and
// close code, only its own connection is affected, and the relay keeps serving.
// Method: one relay (short auth timeout, low rate limit) and a bystander client that stays
// connected; each case opens its own socket, misbehaves, and checks the error message and close
// code; after every case the bystander still gets a pong, and at the end an ack.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { decodeJwt, exportJWK, exportSPKI, generateKeyPair, SignJWT } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { encodeMessage, FRAME_BYTES_MAX, PUSH_ENTRIES_MAX } from '@ledgerline/protocol'
import type { AckMessage, EntriesMessage, ErrorMessage, PongMessage } from '@ledgerline/protocol'
import { signToken } from './auth.ts'
import { TOKEN_CLOCK_TOLERANCE_S } from './limits.ts'
import type { SignTokenOptions } from './auth.ts'
import { createRelay } from './relay.ts'
import type { Relay } from './relay.ts'
import { openClient } from './wire-client.test-helper.ts'
import type { WireClient } from './wire-client.test-helper.ts'

const SECRET = 'bad-input-secret-bad-input-secret'
const AUTH_TIMEOUT_MS = 400

let dir: string
let relay: Relay
let bystander: WireClient
let pings = 0

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'll-bad-input-'))
  relay = await createRelay({
    port: 0,
    dataDir: join(dir, 'data'),
    auth: { secret: SECRET },
    logLevel: 'silent',
    limits: { authTimeoutMs: AUTH_TIMEOUT_MS, rateMessagesPerS: 50, rateMessagesBurst: 100 },
  })
  bystander = await openClient(relay.url)
  const welcome = await bystander.hello(await token())
  if (welcome.type !== 'welcome') throw new Error(`bystander not welcomed: ${welcome.type}`)
})

afterAll(async () => {
  bystander.close()
  await relay.close()
  rmSync(dir, { recursive: true, force: true })
})

function token(overrides: Partial<SignTokenOptions> = {}): Promise<string> {
  return signToken({
    secret: SECRET,
    tenant: 'acme',
    sub: 'till-1',
    read: ['*'],
    write: ['*'],
    ...overrides,
  })
}

/** The bystander is still served: a ping gets its pong. */
async function bystanderServed(): Promise<void> {
  const t = ++pings
  bystander.send({ type: 'ping', t })
  const pong = await bystander.next<PongMessage>((m) => m.type === 'pong' && m.t === t)
  expect(pong.t).toBe(t)
}

/**
 * Waits for the error message and the close of `client`, checks the bystander is still served,
 * and returns the error kind and the close code.
 */
async function closedWith(client: WireClient): Promise<{ kind: string; code: number }> {
  const error = await client.next<ErrorMessage>((m) => m.type === 'error')
  const { code } = await client.closed
  await bystanderServed()
  return { kind: error.kind, code }
}

async function fresh(): Promise<WireClient> {
  return await openClient(relay.url)
}

async function helloed(grants: Partial<SignTokenOptions> = {}): Promise<WireClient> {
  const c = await fresh()
  expect((await c.hello(await token(grants))).type).toBe('welcome')
  return c
}

describe('bad frames', () => {
  it('closes 4400 on a frame that is not MessagePack', async () => {
    // Method: random bytes that do not decode.
    const c = await fresh()
    c.sendRaw(new Uint8Array([0xc1, 0xff, 0x00, 0x13]))
    expect(await closedWith(c)).toEqual({ kind: 'bad_message', code: 4400 })
  })

  it('closes 4400 on a text frame', async () => {
    const c = await helloed()
    c.sendRaw('{"type":"ping","t":1}')
    expect(await closedWith(c)).toEqual({ kind: 'bad_message', code: 4400 })
  })

  it('closes 4400 on an unknown message type and on a message that is not a map', async () => {
    const c = await helloed()
    c.send({ type: 'teleport', to: 'mars' })
    expect(await closedWith(c)).toEqual({ kind: 'bad_message', code: 4400 })
    const d = await helloed()
    d.sendRaw(encodeMessage(42 as never))
    expect(await closedWith(d)).toEqual({ kind: 'bad_message', code: 4400 })
  })

  it('closes 1009 on a frame over FRAME_BYTES_MAX', async () => {
    // Method: one byte over the limit; `ws` refuses it with 1009 before it is decoded.
    const c = await fresh()
    c.sendRaw(new Uint8Array(FRAME_BYTES_MAX + 1))
    expect((await c.closed).code).toBe(1009)
    await bystanderServed()
  })

  it('closes 4401 on a message before hello, and on a socket that never says hello', async () => {
    const c = await fresh()
    c.send({ type: 'push', batch: 1, entries: [] })
    expect(await closedWith(c)).toEqual({ kind: 'hello_required', code: 4401 })
    const quiet = await fresh()
    const t0 = Date.now()
    expect(await closedWith(quiet)).toEqual({ kind: 'unauthorized', code: 4401 })
    expect(Date.now() - t0).toBeGreaterThanOrEqual(AUTH_TIMEOUT_MS - 50)
  })

  it('closes 4426 on an unsupported protocol version and 4400 on a bad clientId or a second hello', async () => {
    const c = await fresh()
    c.send({ type: 'hello', protocol: 999, token: await token(), clientId: c.clientId })
    expect(await closedWith(c)).toEqual({ kind: 'unsupported_protocol', code: 4426 })
    const d = await fresh()
    d.send({ type: 'hello', protocol: 1, token: await token(), clientId: 'not-hex' })
    expect(await closedWith(d)).toEqual({ kind: 'bad_message', code: 4400 })
    const e = await helloed()
    e.send({ type: 'hello', protocol: 1, token: await token(), clientId: e.clientId })
    expect(await closedWith(e)).toEqual({ kind: 'bad_message', code: 4400 })
  })

  it('closes 4400 on a malformed entry and on an entry of another client', async () => {
    const c = await helloed()
    const { kind: _kind, ...noKind } = c.entry('order/o', 'order.line', {})
    c.send({ type: 'push', batch: 1, entries: [noKind] })
    expect(await closedWith(c)).toEqual({ kind: 'bad_message', code: 4400 })
    const d = await helloed()
    const other = await fresh()
    const foreign = other.entry('order/o', 'order.line', {})
    other.close()
    d.send({ type: 'push', batch: 1, entries: [foreign] })
    expect(await closedWith(d)).toEqual({ kind: 'bad_message', code: 4400 })
  })

  it('closes 4413 on a push over PUSH_ENTRIES_MAX entries', async () => {
    const c = await helloed()
    const e = c.entry('order/o', 'order.line', {})
    c.send({ type: 'push', batch: 1, entries: Array(PUSH_ENTRIES_MAX + 1).fill(e) })
    expect(await closedWith(c)).toEqual({ kind: 'too_large', code: 4413 })
  })

  it('closes 4429 when a connection floods past its rate limit', async () => {
    // Method: 300 pings at once against a bucket of 100 refilled at 50/s.
    const c = await helloed()
    for (let i = 0; i < 300; i++) c.send({ type: 'ping', t: i })
    expect(await closedWith(c)).toEqual({ kind: 'rate_limited', code: 4429 })
  })
})

describe('bad tokens', () => {
  const cases: [string, () => Promise<string>, string, number][] = [
    // The codec refuses a hello without a token as a malformed hello.
    ['missing', async () => '', 'bad_message', 4400],
    ['garbage', async () => 'not.a.jwt', 'unauthorized', 4401],
    ['expired', () => token({ expiresInS: -60 }), 'token_expired', 4403],
    ['not yet valid', () => token({ notBeforeS: 300 }), 'unauthorized', 4401],
    ['wrong audience', () => token({ audience: 'someone-else' }), 'unauthorized', 4401],
    ['wrong issuer', () => token({ issuer: 'mallory' }), 'unauthorized', 4401],
    [
      'another key',
      () => token({ secret: 'another-secret-another-secret-xx' }),
      'unauthorized',
      4401,
    ],
    [
      'alg none',
      async () => unsigned({ tenant: 'acme', read: ['*'], write: ['*'] }),
      'unauthorized',
      4401,
    ],
    ['bad tenant claim', () => token({ tenant: 'two words' }), 'unauthorized', 4401],
    ['bad grant pattern', () => token({ read: ['order/ bad'] }), 'unauthorized', 4401],
  ]
  it.each(cases)('refuses a token that is %s', async (_name, make, kind, code) => {
    const c = await fresh()
    const m = await c.hello(await make())
    expect(m).toMatchObject({ type: 'error', kind })
    expect((await c.closed).code).toBe(code)
    await bystanderServed()
  })

  it('closes 4403 with token_expired when the token expires mid-session', async () => {
    // Method: a token valid for about 1 s; the socket is closed once the token check would
    // refuse it: at its exp plus the clock tolerance (never before, whatever the load).
    const c = await fresh()
    const jwt = await token({ expiresInS: 1 })
    const m = await c.hello(jwt)
    expect(m.type).toBe('welcome')
    const error = await c.next<ErrorMessage>((x) => x.type === 'error', 15_000)
    expect({ kind: error.kind, code: (await c.closed).code }).toEqual({
      kind: 'token_expired',
      code: 4403,
    })
    const payload = decodeJwt(jwt)
    expect(Date.now()).toBeGreaterThanOrEqual(((payload.exp ?? 0) + TOKEN_CLOCK_TOLERANCE_S) * 1000)
  }, 20_000)

  it('pins algorithms for public keys and JWKS: ES256 passes, HS256 with the public key fails', async () => {
    // Method: relays with a PEM public key and with a JWKS file; tokens signed with the private
    // key pass; an HS256 token whose secret is the PEM (algorithm confusion) and an unknown
    // kid are refused.
    const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: true })
    const pem = await exportSPKI(publicKey)
    const pemFile = join(dir, 'public.pem')
    writeFileSync(pemFile, pem)
    const jwksFile = join(dir, 'jwks.json')
    writeFileSync(
      jwksFile,
      JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256' }] }),
    )
    const claims = { tenant: 'acme', read: ['*'], write: ['*'] }
    const es = (kid?: string) =>
      new SignJWT(claims)
        .setProtectedHeader(kid === undefined ? { alg: 'ES256' } : { alg: 'ES256', kid })
        .setSubject('till-1')
        .setIssuer('ledgerline')
        .setAudience('ledgerline-relay')
        .setExpirationTime('1h')
        .sign(privateKey)
    const confused = await new SignJWT(claims)
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('till-1')
      .setIssuer('ledgerline')
      .setAudience('ledgerline-relay')
      .setExpirationTime('1h')
      .sign(new TextEncoder().encode(pem))
    for (const auth of [{ publicKeyFile: pemFile }, { jwksFile }]) {
      const r = await createRelay({
        port: 0,
        dataDir: join(dir, `pk-${Object.keys(auth)[0]}`),
        auth,
        logLevel: 'silent',
      })
      try {
        const ok = await openClient(r.url)
        expect(await ok.hello(await es('k1'))).toMatchObject({ type: 'welcome' })
        ok.close()
        const bad = await openClient(r.url)
        expect(await bad.hello(confused)).toMatchObject({ type: 'error', kind: 'unauthorized' })
        expect((await bad.closed).code).toBe(4401)
        const unknownKid = await openClient(r.url)
        // A PEM key has no kid, so only the JWKS relay can refuse the kid itself; both refuse.
        expect(await unknownKid.hello(await es('k2'))).toMatchObject(
          'jwksFile' in auth ? { type: 'error', kind: 'unauthorized' } : { type: 'welcome' },
        )
        unknownKid.close()
      } finally {
        await r.close()
      }
    }
    await bystanderServed()
  })
})

describe('grants', () => {
  it('refuses pushes outside the write grants or tenant as forbidden, recorded and acked', async () => {
    // Method: a token that may write only `order/*`; push an order line, a stock move, and an
    // entry naming another tenant; resend the batch: the same answers.
    const c = await helloed({ write: ['order/*'] })
    const entries = [
      c.entry('order/o1', 'order.line', {}),
      c.entry('stock/a', 'stock.moved', { qty: 1 }),
      c.entry('order/o1', 'order.line', {}, { tenant: 'beta' }),
    ]
    c.send({ type: 'push', batch: 1, entries })
    const ack = await c.next<AckMessage>((m) => m.type === 'ack')
    expect(ack.results.map((r) => [r.status, r.status === 'refused' ? r.code : ''])).toEqual([
      ['appended', ''],
      ['refused', 'forbidden'],
      ['refused', 'forbidden'],
    ])
    c.send({ type: 'push', batch: 2, entries })
    const again = await c.next<AckMessage>((m) => m.type === 'ack' && m.batch === 2)
    expect(again.results.slice(1)).toEqual(ack.results.slice(1))
    expect(await relay.store.head('acme', 'stock/a')).toEqual({ version: 0, offset: 0 })
    expect(await relay.store.head('beta', 'order/o1')).toEqual({ version: 0, offset: 0 })
  })

  it('refuses a subscription outside the read grants and keeps the socket open', async () => {
    // Method: read grants `order/*`; subscribing to `*` or `stock/*` is forbidden; `order/s7-*`
    // is within and works.
    const c = await helloed({ read: ['order/*'] })
    for (const scope of [['*'], ['stock/*'], ['order/*', 'stock/a'], ['orde*']]) {
      c.send({ type: 'subscribe', sub: 1, scope, cursors: {}, credit: 1 })
      const e = await c.next<ErrorMessage>((m) => m.type === 'error')
      expect(e.kind).toBe('forbidden')
    }
    c.send({ type: 'subscribe', sub: 2, scope: ['order/s7-*'], cursors: {}, credit: 1 })
    const page = await c.next<EntriesMessage>((m) => m.type === 'entries')
    expect(page).toMatchObject({ sub: 2, live: true })
    c.send({ type: 'ping', t: 5 })
    expect(await c.next((m) => m.type === 'pong')).toMatchObject({ t: 5 })
  })

  it('closes a slow consumer with 4408 once its buffered bytes pass the cap', async () => {
    // Method: a relay with a 256 KiB cap (and a long close handshake, so the paused client can
    // still read its close frame); a subscriber that stops reading (socket paused) while a
    // writer pushes 12 batches of 20 × 40 KB entries, about twice what loopback buffers hold;
    // then the subscriber reads again and finds the error and the close code 4408. Pages
    // never exceed the frame limit on the way.
    const r = await createRelay({
      port: 0,
      dataDir: join(dir, 'slow'),
      auth: { secret: SECRET },
      logLevel: 'silent',
      limits: { bufferedBytesMax: 256 * 1024, closeHandshakeTimeoutMs: 20_000 },
    })
    try {
      const t = await token()
      const reader = await openClient(r.url)
      expect((await reader.hello(t)).type).toBe('welcome')
      reader.send({ type: 'subscribe', sub: 1, scope: ['*'], cursors: {}, credit: 64 })
      await reader.next((m) => m.type === 'entries')
      const socket = (reader.ws as unknown as { _socket: { pause(): void; resume(): void } })
        ._socket
      socket.pause()
      const writer = await openClient(r.url)
      expect((await writer.hello(t)).type).toBe('welcome')
      const blob = 'x'.repeat(40_000)
      for (let b = 0; b < 12; b++) {
        writer.send({
          type: 'push',
          batch: b,
          entries: Array.from({ length: 20 }, () => writer.entry('doc/d', 'doc.put', { blob })),
        })
        await writer.next((m) => m.type === 'ack' && m.batch === b)
      }
      socket.resume()
      const error = await reader.next<ErrorMessage>((m) => m.type === 'error', 15_000)
      expect(error.kind).toBe('slow_consumer')
      expect((await reader.closed).code).toBe(4408)
      const pages = reader.received.filter((m): m is EntriesMessage => m.type === 'entries')
      expect(pages.length).toBeGreaterThan(1)
      for (const p of pages) {
        expect(encodeMessage(p).byteLength).toBeLessThanOrEqual(FRAME_BYTES_MAX)
      }
      writer.close()
    } finally {
      await r.close()
    }
    await bystanderServed()
  })

  it('still serves the bystander after all of it', async () => {
    // Method: the bystander pushes and gets its ack.
    const e = bystander.entry('order/after', 'order.line', {})
    bystander.send({ type: 'push', batch: 99, entries: [e] })
    const ack = await bystander.next<AckMessage>((m) => m.type === 'ack' && m.batch === 99)
    expect(ack.results[0]).toMatchObject({ id: e.id, status: 'appended' })
  })
})

/** An `alg: none` token with otherwise valid claims. */
function unsigned(claims: Record<string, unknown>): string {
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url')
  const now = Math.floor(Date.now() / 1000)
  return `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ ...claims, sub: 'x', iss: 'ledgerline', aud: 'ledgerline-relay', exp: now + 600 })}.`
}
