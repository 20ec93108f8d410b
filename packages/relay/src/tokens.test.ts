// Goal: guarantee 9 (isolation) and the auth half of guarantee 10 under hostile tokens and
// random grants. Method: an in-process relay (plain log, port 0), on SQLite and PostgreSQL. (1) Token mutations: missing,
// garbage, expired, not yet valid, wrong audience or issuer, `alg: none`, wrong key, another
// algorithm, a tampered payload, bad claims, an oversized token, and seeded one-character
// substitutions of a valid token; each must be refused (4401 unauthorized, or 4403
// token_expired) before anything is processed, and nothing is written. (2) GRANT_CLIENTS
// clients with random (tenant, read, write) grants subscribe within their read grants and push
// random entries, some naming the other tenant; every ack must say appended exactly when the
// entity is within the writer's write grants and tenant; the log (read back from the store)
// must hold nothing outside its writer's grants; and no socket may ever receive an entry outside
// its tenant and read grants. The seed is printed; LEDGERLINE_SEED replays; LEDGERLINE_TOKEN_MUTATIONS
// and LEDGERLINE_GRANT_CLIENTS raise the counts (deep tier).
import { generateKeyPair, SignJWT } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { matchesAny } from '@ledgerline/core'
import type { Entry, StoredEntry } from '@ledgerline/core'
import { ERROR_KINDS, TOKEN_LENGTH_MAX } from '@ledgerline/protocol'
import type { AckMessage, EntriesMessage, ErrorKind, ErrorMessage } from '@ledgerline/protocol'
import { createPrng } from '@ledgerline/testkit'
import type { Prng } from '@ledgerline/testkit'
import { signToken, TOKEN_AUDIENCE_DEFAULT, TOKEN_ISSUER_DEFAULT } from './auth.ts'
import { LOG_KINDS, startEdgeRelay, stopPostgres } from './edges.test-helper.ts'
import type { EdgeRelay } from './edges.test-helper.ts'
import { openClient } from './wire-client.test-helper.ts'
import type { WireClient } from './wire-client.test-helper.ts'

const SEED = Number(process.env.LEDGERLINE_SEED ?? 7_007)
/** Seeded one-character substitutions of a valid token in the quick tier. */
const TOKEN_SUBSTITUTIONS_QUICK = 40
const TOKEN_SUBSTITUTIONS = Number(
  process.env.LEDGERLINE_TOKEN_MUTATIONS ?? TOKEN_SUBSTITUTIONS_QUICK,
)
/** Clients with random grants in the quick tier. */
const GRANT_CLIENTS_QUICK = 24
const GRANT_CLIENTS = Number(process.env.LEDGERLINE_GRANT_CLIENTS ?? GRANT_CLIENTS_QUICK)
/** Entries each grant client pushes. */
const GRANT_PUSHES = 6
const SECRET = 'tokens-secret-tokens-secret-tokens'
const TENANTS = ['acme', 'beta']
const PATTERNS = ['*', 'order/*', 'stock/*', 'stock/a', 'note/*', 'order/o1']
const ENTITIES = ['order/o1', 'order/o2', 'stock/a', 'stock/b', 'note/n1']
const DELIVERY_WAIT_MS = 8_000

let relay: EdgeRelay

afterAll(() => stopPostgres())

describe.each(LOG_KINDS)('on %s', (kind) => {
  beforeAll(async () => {
    relay = await startEdgeRelay(kind, { schema: null, secret: SECRET })
  })

  afterAll(async () => {
    await relay?.close()
  })

  describe(`token mutations (seed ${SEED})`, () => {
    it('refuses every mutated token before processing anything', async () => {
      const valid = await signToken({
        secret: SECRET,
        tenant: 'acme',
        sub: 'till',
        read: ['*'],
        write: ['*'],
      })
      const [header, payload] = valid.split('.') as [string, string, string]
      const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as Record<
        string,
        unknown
      >
      const nowS = Math.floor(Date.now() / 1000)
      const hs = (body: Record<string, unknown>, secret = SECRET, alg = 'HS256') =>
        new SignJWT(body)
          .setProtectedHeader({ alg, typ: 'JWT' })
          .sign(new TextEncoder().encode(secret))
      const { privateKey } = await generateKeyPair('ES256')
      // The codec refuses a token of the wrong shape (empty, over TOKEN_LENGTH_MAX) before auth
      // sees it: those two may also be `bad_message` (4400) or `too_large` (4413).
      const mutations: [string, string, Refusal][] = [
        ['missing', '', 'unauthorized|bad_message'],
        ['garbage', 'not.a.jwt', 'unauthorized'],
        [
          'expired',
          await signToken({
            secret: SECRET,
            tenant: 'acme',
            sub: 's',
            read: ['*'],
            write: ['*'],
            expiresInS: -3600,
          }),
          'token_expired',
        ],
        [
          'not yet valid',
          await signToken({
            secret: SECRET,
            tenant: 'acme',
            sub: 's',
            read: ['*'],
            write: ['*'],
            notBeforeS: 3600,
          }),
          'unauthorized',
        ],
        [
          'wrong audience',
          await signToken({
            secret: SECRET,
            tenant: 'acme',
            sub: 's',
            read: ['*'],
            write: ['*'],
            audience: 'other',
          }),
          'unauthorized',
        ],
        [
          'wrong issuer',
          await signToken({
            secret: SECRET,
            tenant: 'acme',
            sub: 's',
            read: ['*'],
            write: ['*'],
            issuer: 'evil',
          }),
          'unauthorized',
        ],
        ['alg none', `${b64({ alg: 'none', typ: 'JWT' })}.${payload}.`, 'unauthorized'],
        [
          'alg none, signature kept',
          `${b64({ alg: 'none', typ: 'JWT' })}.${payload}.${valid.split('.')[2]}`,
          'unauthorized',
        ],
        [
          'wrong key',
          await signToken({
            secret: 'another-secret-another-secret-xx',
            tenant: 'acme',
            sub: 's',
            read: ['*'],
            write: ['*'],
          }),
          'unauthorized',
        ],
        ['HS512 with the right secret', await hs(claims, SECRET, 'HS512'), 'unauthorized'],
        [
          'ES256 from a foreign key',
          await new SignJWT(claims).setProtectedHeader({ alg: 'ES256' }).sign(privateKey),
          'unauthorized',
        ],
        [
          'tampered tenant',
          `${header}.${b64({ ...claims, tenant: 'beta' })}.${valid.split('.')[2]}`,
          'unauthorized',
        ],
        [
          'tampered grants',
          `${header}.${b64({ ...claims, write: ['*', 'x'] })}.${valid.split('.')[2]}`,
          'unauthorized',
        ],
        [
          'no tenant claim',
          await hs({
            sub: 's',
            read: ['*'],
            write: ['*'],
            iss: TOKEN_ISSUER_DEFAULT,
            aud: TOKEN_AUDIENCE_DEFAULT,
            exp: nowS + 60,
          }),
          'unauthorized',
        ],
        [
          'bad pattern in grants',
          await hs({
            sub: 's',
            tenant: 'acme',
            read: ['*'],
            write: ['order/ o'],
            iss: TOKEN_ISSUER_DEFAULT,
            aud: TOKEN_AUDIENCE_DEFAULT,
            exp: nowS + 60,
          }),
          'unauthorized',
        ],
        [
          'no exp',
          await hs({
            sub: 's',
            tenant: 'acme',
            read: ['*'],
            write: ['*'],
            iss: TOKEN_ISSUER_DEFAULT,
            aud: TOKEN_AUDIENCE_DEFAULT,
          }),
          'unauthorized',
        ],
        ['oversized', `${valid}${'A'.repeat(TOKEN_LENGTH_MAX)}`, 'unauthorized|too_large'],
      ]
      const rng = createPrng(SEED)
      for (let i = 0; i < TOKEN_SUBSTITUTIONS; i++) {
        const mutated = substitute(valid, rng)
        if (mutated !== undefined) mutations.push([`substitution ${i}`, mutated, 'unauthorized'])
      }
      const heads = await relay.store.partitionHeads()
      const wrong: string[] = []
      for (const [name, token, kind] of mutations) {
        const c = await openClient(relay.url)
        const answer = await c.hello(token).catch((error: unknown) => ({ type: 'none', error }))
        // A message sent right after the refused hello must not be processed.
        if (c.ws.readyState === c.ws.OPEN) {
          c.send({
            type: 'push',
            batch: 1,
            entries: [c.entry('stock/a', 'stock.moved', { qty: 1 })],
          })
        }
        const { code } = await c.closed
        const got = answer.type === 'error' ? (answer as ErrorMessage).kind : answer.type
        const ok = kind
          .split('|')
          .some((k) => k === got && ERROR_KINDS[k as ErrorKind].closeCode === code)
        if (!ok) wrong.push(`seed ${SEED} ${name}: got ${got} / ${code}, want ${kind}`)
      }
      expect(wrong).toEqual([])
      expect(await relay.store.partitionHeads()).toEqual(heads)
      // oxlint-disable-next-line no-console -- the figures go into the README's "How we test"
      console.log(`tokens: seed ${SEED}, ${mutations.length} token mutations refused`)
    })
  })

  describe(`random grants (seed ${SEED}, ${GRANT_CLIENTS} clients)`, () => {
    it('writes and delivers nothing outside a grant', async () => {
      const rng = createPrng(SEED + 1)
      const clients: GrantClient[] = []
      for (let i = 0; i < GRANT_CLIENTS; i++) {
        const tenant = rng.pick(TENANTS)
        const read = pickSome(rng, PATTERNS)
        const write = rng.chance(0.15) ? [] : pickSome(rng, PATTERNS)
        const token = await signToken({ secret: SECRET, tenant, sub: `c${i}`, read, write })
        const c = await openClient(relay.url)
        const welcome = await c.hello(token)
        expect(welcome.type).toBe('welcome')
        c.send({ type: 'subscribe', sub: 1, scope: read, cursors: {}, credit: 64 })
        clients.push({ c, tenant, read, write, pushed: [] })
      }
      const byClientId = new Map(clients.map((g) => [g.c.clientId, g]))
      const wrongAcks: string[] = []
      for (const g of clients) {
        const entries: Entry[] = []
        for (let k = 0; k < GRANT_PUSHES; k++) {
          const entity = rng.pick(ENTITIES)
          const tenant = rng.chance(0.15) ? rng.pick(TENANTS) : g.tenant
          entries.push(g.c.entry(entity, `${entity.split('/')[0]}.added`, { k }, { tenant }))
        }
        g.c.send({ type: 'push', batch: 1, entries })
        const ack = await g.c.next<AckMessage>((m) => m.type === 'ack')
        ack.results.forEach((r, k) => {
          const e = entries[k] as Entry
          const allowed = e.tenant === g.tenant && matchesAny(g.write, e.entity)
          const appended = r.status === 'appended' || r.status === 'duplicate'
          if (allowed !== appended)
            wrongAcks.push(`${e.id} (${e.tenant} ${e.entity}) allowed=${allowed} got ${r.status}`)
          if (allowed) g.pushed.push(e)
        })
      }
      expect(wrongAcks).toEqual([])

      // The log holds nothing outside its writer's grants.
      const written: StoredEntry[] = []
      for (const tenant of TENANTS) {
        for (let p = 0; p < relay.store.partitions; p++) {
          const page = await relay.store.readPartition(tenant, p, 0, 100_000)
          written.push(...page.entries)
        }
      }
      const outside = written.filter((e) => {
        const g = byClientId.get(e.clientId)
        return g === undefined || g.tenant !== e.tenant || !matchesAny(g.write, e.entity)
      })
      expect(outside.map((e) => `seed ${SEED}: ${e.id} ${e.tenant} ${e.entity}`)).toEqual([])

      // Every socket receives exactly what its grants allow, and nothing else.
      const ours = new Set(clients.flatMap((g) => g.pushed.map((e) => e.id)))
      const until = Date.now() + DELIVERY_WAIT_MS
      const delivered = (g: GrantClient) =>
        g.c.received.flatMap((m) => (m.type === 'entries' ? (m as EntriesMessage).entries : []))
      const expected = (g: GrantClient) =>
        written.filter(
          (e) => ours.has(e.id) && e.tenant === g.tenant && matchesAny(g.read, e.entity),
        )
      while (Date.now() < until) {
        if (clients.every((g) => new Set(delivered(g).map((e) => e.id)).size >= expected(g).length))
          break
        await new Promise((resolve) => setTimeout(resolve, 100))
      }
      const leaks: string[] = []
      const missing: string[] = []
      let deliveries = 0
      for (const g of clients) {
        const got = delivered(g)
        deliveries += got.length
        for (const e of got) {
          if (e.tenant !== g.tenant || !matchesAny(g.read, e.entity)) {
            leaks.push(
              `seed ${SEED}: ${g.c.clientId} (${g.tenant} ${g.read.join(',')}) got ${e.tenant} ${e.entity}`,
            )
          }
        }
        const ids = new Set(got.map((e) => e.id))
        for (const e of expected(g))
          if (!ids.has(e.id)) missing.push(`${g.c.clientId} missed ${e.id}`)
      }
      expect(leaks).toEqual([])
      expect(missing).toEqual([])
      for (const g of clients) g.c.close()
      // oxlint-disable-next-line no-console -- the figures go into the README's "How we test"
      console.log(
        `grants: seed ${SEED}, ${GRANT_CLIENTS} clients, ${GRANT_CLIENTS * GRANT_PUSHES} pushes, ` +
          `${written.length} written, ${deliveries} deliveries, 0 outside a grant`,
      )
    })
  })
})

/** The refusal kinds a mutation may get, `|`-separated; each with its kind's close code. */
type Refusal =
  | 'unauthorized'
  | 'token_expired'
  | 'unauthorized|bad_message'
  | 'unauthorized|too_large'

interface GrantClient {
  readonly c: WireClient
  readonly tenant: string
  readonly read: string[]
  readonly write: string[]
  readonly pushed: Entry[]
}

function pickSome(rng: Prng, items: readonly string[]): string[] {
  const out = items.filter(() => rng.chance(0.3))
  return out.length > 0 ? out : [rng.pick(items)]
}

function b64(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url')
}

/** One character of `token` replaced; `undefined` when the change decodes to the same bytes. */
function substitute(token: string, rng: Prng): string | undefined {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.'
  const i = rng.int(0, token.length - 1)
  const mutated = token.slice(0, i) + rng.pick([...alphabet]) + token.slice(i + 1)
  const decode = (t: string) =>
    t
      .split('.')
      .map((part) => Buffer.from(part, 'base64url').toString('hex'))
      .join('.')
  // base64url's last character carries padding bits; a change there may decode identically.
  return decode(mutated) === decode(token) ? undefined : mutated
}
