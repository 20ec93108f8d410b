// Goal: the `--dev` store hub's "store internet" switch (`/dev/upstream`, dev-upstream.ts) cuts
// the hub's link to head office and keeps it cut (no redial) until restored, keeps the cut
// across a restart of the hub on its directory, refuses bad bodies with a code and changes
// nothing then, and exists only on a relay that is both `--dev` and a hub. `/dev/token?role=hub`
// gives a token with a forward grant that head office welcomes as a hub's.
// Method: head office and hubs in-process on loopback (real sockets); the link's state is read
// through the route (`GET /dev/upstream`: `linkUp` is the link's own state).
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { SECRET, TENANT, token } from '../edges.test-helper.ts'
import { createRelay } from '../index.ts'
import type { Relay } from '../index.ts'
import { DEV_UPSTREAM_BODY_BYTES_MAX, UPSTREAM_BACKOFF_MS_MIN } from '../index.ts'
import { DEV_UPSTREAM_CUT_FILE } from './dev-upstream.ts'
import type { DevUpstreamState } from './dev-upstream.ts'
import { startTestRelay } from './hub.test-helper.ts'

const undo: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const u of undo.splice(0).reverse()) await u()
})

/** Long enough for several redials at the link's shortest backoff, were it redialling. */
const REDIAL_WINDOW_MS = UPSTREAM_BACKOFF_MS_MIN * 6
/** Bound of every wait on a condition: far above what a step takes on a loaded machine. */
const WAIT_MS = 30_000

async function startHub(
  hq: Relay,
  dataDir: string,
  dev = true,
  hubToken?: string,
): Promise<{ relay: Relay; close(): Promise<void> }> {
  const relay = await createRelay({
    port: 0,
    dataDir,
    auth: { secret: SECRET },
    logLevel: 'silent',
    dev,
    upstream: {
      url: hq.url,
      token: hubToken ?? (await token({ sub: 'hub-dev', read: ['*'], write: [], forward: ['*'] })),
    },
  })
  let closed = false
  const close = async () => {
    if (closed) return
    closed = true
    await relay.close()
  }
  undo.push(close)
  return { relay, close }
}

/** Head office with `--dev` (the development token issuer, no upstream). */
async function startDevHeadOffice(): Promise<Relay> {
  const relay = await createRelay({
    port: 0,
    dataDir: newDir(),
    auth: { secret: SECRET },
    logLevel: 'silent',
    dev: true,
  })
  undo.push(() => relay.close())
  return relay
}

function newDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'll-dev-upstream-'))
  undo.push(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

async function getSwitch(relay: Relay): Promise<DevUpstreamState> {
  const res = await fetch(`${relay.httpUrl}/dev/upstream`)
  expect(res.status).toBe(200)
  return (await res.json()) as DevUpstreamState
}

async function post(relay: Relay, body: string): Promise<{ status: number; json: unknown }> {
  const res = await fetch(`${relay.httpUrl}/dev/upstream`, { method: 'POST', body })
  return { status: res.status, json: await res.json() }
}

async function linkIs(relay: Relay, up: boolean): Promise<void> {
  const until = Date.now() + WAIT_MS
  while ((await getSwitch(relay)).linkUp !== up) {
    if (Date.now() > until) throw new Error(`the link is not ${up ? 'up' : 'down'}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

describe('/dev/upstream on a --dev store hub', () => {
  it('cuts the link, keeps it cut across a restart, and restores it', async () => {
    const hq = await startTestRelay(undo)
    const dir = newDir()
    let hub = await startHub(hq, dir)
    await linkIs(hub.relay, true)
    expect(await getSwitch(hub.relay)).toEqual({
      connected: true,
      linkUp: true,
      upstream: [hq.url],
    })

    const cut = await post(hub.relay, JSON.stringify({ connected: false }))
    expect(cut).toMatchObject({ status: 200, json: { connected: false } })
    expect(existsSync(join(dir, DEV_UPSTREAM_CUT_FILE))).toBe(true)
    await linkIs(hub.relay, false)
    // No redial while cut.
    await new Promise((resolve) => setTimeout(resolve, REDIAL_WINDOW_MS))
    expect(await getSwitch(hub.relay)).toMatchObject({ connected: false, linkUp: false })

    // The cut outlives the hub: restarted on its directory, it does not dial.
    await hub.close()
    hub = await startHub(hq, dir)
    await new Promise((resolve) => setTimeout(resolve, REDIAL_WINDOW_MS))
    expect(await getSwitch(hub.relay)).toMatchObject({ connected: false, linkUp: false })

    const restored = await post(hub.relay, JSON.stringify({ connected: true }))
    expect(restored).toMatchObject({ status: 200, json: { connected: true } })
    expect(existsSync(join(dir, DEV_UPSTREAM_CUT_FILE))).toBe(false)
    await linkIs(hub.relay, true)
  })

  it('refuses bad bodies and methods with a code, and changes nothing', async () => {
    const hq = await startTestRelay(undo)
    const hub = await startHub(hq, newDir())
    await linkIs(hub.relay, true)
    const bad = ['', 'nope', '{}', '{"connected":"no"}', 'null', '[false]']
    for (const body of bad) {
      expect(await post(hub.relay, body)).toMatchObject({ status: 400, json: { code: 'invalid' } })
    }
    const large = JSON.stringify({ connected: false, pad: 'x'.repeat(DEV_UPSTREAM_BODY_BYTES_MAX) })
    expect(await post(hub.relay, large)).toMatchObject({
      status: 400,
      json: { code: 'too_large' },
    })
    const put = await fetch(`${hub.relay.httpUrl}/dev/upstream`, { method: 'PUT', body: '{}' })
    expect(put.status).toBe(405)
    expect(await getSwitch(hub.relay)).toMatchObject({ connected: true, linkUp: true })
  })

  it('exists only on a relay that is --dev and a hub', async () => {
    const hq = await startTestRelay(undo)
    const plainHub = await startHub(hq, newDir(), false)
    const devHq = await startDevHeadOffice()
    for (const relay of [hq, plainHub.relay, devHq]) {
      const res = await fetch(`${relay.httpUrl}/dev/upstream`, {
        method: 'POST',
        body: '{"connected":false}',
      })
      expect(res.status).toBe(404)
    }
  })

  it('/dev/token?role=hub gives a hub token with a forward grant that head office welcomes', async () => {
    const devHq = await startDevHeadOffice()
    const issue = async (query: string) => {
      const res = await fetch(`${devHq.httpUrl}/dev/token?tenant=${TENANT}&${query}`)
      return ((await res.json()) as { token: string }).token
    }
    const claims = (t: string) =>
      JSON.parse(Buffer.from(t.split('.')[1] ?? '', 'base64url').toString('utf8')) as {
        forward?: string[]
        sub: string
      }
    const hubToken = await issue('sub=hub-1&role=hub')
    expect(claims(hubToken)).toMatchObject({ sub: 'hub-1', forward: ['*'] })
    expect(claims(await issue('sub=r1')).forward).toBeUndefined()
    const hub = await startHub(devHq, newDir(), true, hubToken)
    await linkIs(hub.relay, true)
  })
})
