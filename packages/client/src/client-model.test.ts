// Goal: the client API against a small model (anchors-reliability.md A12): every entry whose
// append resolved reaches the relay exactly once, each client's entries in clientSeq order,
// and after a sync every view equals the model's fold, whatever sequence of appends, syncs,
// crashes and second tabs on the same database came before.
// Method: fast-check `asyncModelRun` over commands append / appendMany / sync / crash (close
// without waiting, then reopen on the same fake-indexeddb database) / second tab (another
// client on the same dbName, which in Node also runs a socket: both drain one outbox). A real
// relay runs in-process (SQLite in a temp dir, port 0); fixed seed, bounded runs. Every run
// ends with a sync and the full check. Reproduce a failure with the printed seed and path.
import 'fake-indexeddb/auto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { forceCloseDatabase, IDBFactory } from 'fake-indexeddb'
import { startRelay, type TestRelay } from '../test-support/relay.ts'
import { makeClient } from '../test-support/setup.ts'
import type { Client } from './client.ts'

const SEED = Number(process.env.LEDGERLINE_SEED ?? 20_261_127)
const RUNS = Number(process.env.LEDGERLINE_MODEL_RUNS ?? 100)
const ENTITIES = ['order/m0', 'order/m1', 'order/m2']

interface Model {
  /** Entries whose append resolved, in the order they resolved. */
  readonly appended: { id: string; entity: string; clientId: string; clientSeq: number }[]
}

interface Real {
  readonly run: number
  readonly idb: IDBFactory
  readonly dbName: string
  /** Open clients on the one database (tab 0, and tab 1 when a second tab is open). */
  clients: Tab[]
}

interface Tab {
  readonly client: Client
  /** The IndexedDB connections this client opened (to drop them in a crash). */
  readonly connections: IDBDatabase[]
}

let server: TestRelay
let url = ''
let runs = 0
beforeAll(async () => {
  server = await startRelay()
  url = `ws://127.0.0.1:${server.relay.port}/sync`
})
afterAll(async () => {
  await server?.close()
})

function open(real: Real): Tab {
  const connections: IDBDatabase[] = []
  // The same factory, but it keeps the connections it opens for this client.
  const idb = new Proxy(real.idb, {
    get(target, key) {
      if (key === 'open') {
        return (name: string, version?: number) => {
          const request = target.open(name, version)
          request.addEventListener('success', () => connections.push(request.result))
          return request
        }
      }
      const value: unknown = Reflect.get(target, key)
      return typeof value === 'function' ? (value as () => unknown).bind(target) : value
    },
  })
  const client = makeClient({
    url,
    token: () => server.token(),
    idb,
    dbName: real.dbName,
    // Tabs of one database hear each other; without Web Locks (Node) each runs a socket.
    BroadcastChannel: globalThis.BroadcastChannel,
  })
  return { client, connections }
}

const entityOf = (real: Real, i: number) => `${ENTITIES[i % ENTITIES.length]}-r${real.run}`

class AppendCommand implements fc.AsyncCommand<Model, Real> {
  readonly tab: number
  readonly entities: readonly number[]
  constructor(tab: number, entities: readonly number[]) {
    this.tab = tab
    this.entities = entities
  }
  check = () => true
  async run(model: Model, real: Real): Promise<void> {
    const { client } = real.clients[this.tab % real.clients.length] as Tab
    const drafts = this.entities.map((i) => ({
      entity: entityOf(real, i),
      kind: 'order.line',
      data: { i },
    }))
    const entries =
      drafts.length === 1
        ? [
            await client.append(
              (drafts[0] as (typeof drafts)[0]).entity,
              'order.line',
              (drafts[0] as (typeof drafts)[0]).data,
            ),
          ]
        : await client.appendMany(drafts)
    for (const e of entries)
      model.appended.push({
        id: e.id,
        entity: e.entity,
        clientId: e.clientId,
        clientSeq: e.clientSeq,
      })
  }
  toString = () =>
    `${this.entities.length === 1 ? 'append' : 'appendMany'}(tab ${this.tab}, [${this.entities.join(',')}])`
}

class SyncCommand implements fc.AsyncCommand<Model, Real> {
  check = () => true
  async run(model: Model, real: Real): Promise<void> {
    await checkSynced(model, real)
  }
  toString = () => 'sync'
}

class CrashCommand implements fc.AsyncCommand<Model, Real> {
  readonly tab: number
  readonly abrupt: boolean
  constructor(tab: number, abrupt: boolean) {
    this.tab = tab
    this.abrupt = abrupt
  }
  check = () => true
  async run(_model: Model, real: Real): Promise<void> {
    const i = this.tab % real.clients.length
    const tab = real.clients[i] as Tab
    // A crash: the database connection is dropped at once (its transactions in flight abort,
    // as when a tab dies), or the client is closed without waiting; either way a new client
    // opens the same database at once.
    if (this.abrupt) for (const db of tab.connections) forceCloseDatabase(db as never)
    void tab.client.close()
    real.clients[i] = open(real)
  }
  toString = () => `crash(tab ${this.tab}${this.abrupt ? ', abrupt' : ''})`
}

class SecondTabCommand implements fc.AsyncCommand<Model, Real> {
  check = (_m: Readonly<Model>) => true
  async run(_model: Model, real: Real): Promise<void> {
    if (real.clients.length >= 2) {
      // Close the second tab instead, so runs see tabs come and go.
      await (real.clients.pop() as Tab).client.close()
      return
    }
    real.clients.push(open(real))
  }
  toString = () => 'secondTab'
}

/** Every open client synced; the relay holds each resolved append once, in order; views fold. */
async function checkSynced(model: Model, real: Real): Promise<void> {
  for (const { client } of real.clients) {
    expect(await client.synced({ timeoutMs: 15_000 })).toEqual({ _tag: 'synced' })
  }
  const expected = new Map(model.appended.map((a) => [a.id, a]))
  for (let i = 0; i < ENTITIES.length; i++) {
    const entity = entityOf(real, i)
    const logged = await server.relay.store.readEntity('t1', entity, 1, 100_000)
    const ids = logged.map((e) => e.id)
    // Exactly once: no duplicate, nothing unexpected, nothing lost.
    expect(new Set(ids).size).toBe(ids.length)
    for (const id of ids) expect(expected.get(id)?.entity).toBe(entity)
    const wanted = model.appended.filter((a) => a.entity === entity)
    expect(ids.length).toBe(wanted.length)
    // Each client's entries in clientSeq order (versions follow the server log's order).
    const lastSeq = new Map<string, number>()
    for (const e of logged) {
      expect(e.clientSeq).toBeGreaterThan(lastSeq.get(e.clientId) ?? 0)
      lastSeq.set(e.clientId, e.clientSeq)
    }
    for (const { client } of real.clients) {
      const snap = await client.load<{ lines: number }>(entity)
      expect(snap.pending).toEqual([])
      expect(snap.version).toBe(wanted.length)
      expect(snap.view).toEqual({ lines: wanted.length })
      expect(snap.confirmed).toEqual({ lines: wanted.length })
    }
  }
}

const commands = [
  fc
    .tuple(fc.nat(1), fc.nat(ENTITIES.length - 1))
    .map(([tab, e]) => new AppendCommand(tab, [e]) as fc.AsyncCommand<Model, Real>),
  fc
    .tuple(fc.nat(1), fc.array(fc.nat(ENTITIES.length - 1), { minLength: 2, maxLength: 20 }))
    .map(([tab, es]) => new AppendCommand(tab, es) as fc.AsyncCommand<Model, Real>),
  fc.constant(new SyncCommand() as fc.AsyncCommand<Model, Real>),
  fc
    .tuple(fc.nat(1), fc.boolean())
    .map(([tab, abrupt]) => new CrashCommand(tab, abrupt) as fc.AsyncCommand<Model, Real>),
  fc.constant(new SecondTabCommand() as fc.AsyncCommand<Model, Real>),
]

describe('client API against a model', () => {
  it('delivers resolved appends exactly once, in order, with views equal to the fold', async () => {
    process.stdout.write(`[seed] client-model: LEDGERLINE_SEED=${SEED}, runs ${RUNS}\n`)
    let stats = { runs: 0, commands: 0 }
    await fc.assert(
      fc.asyncProperty(fc.commands(commands, { maxCommands: 24 }), async (cmds) => {
        const real: Real = {
          run: ++runs,
          idb: new IDBFactory(),
          dbName: `model-${runs}`,
          clients: [],
        }
        real.clients.push(open(real))
        const model: Model = { appended: [] }
        try {
          await fc.asyncModelRun(() => ({ model, real }), cmds)
          await checkSynced(model, real)
          stats = { runs: stats.runs + 1, commands: stats.commands + [...cmds].length }
        } finally {
          for (const { client } of real.clients) await client.close()
        }
      }),
      { seed: SEED, numRuns: RUNS },
    )
    process.stdout.write(`[measure] model runs: ${stats.runs}, commands: ${stats.commands}\n`)
    // The checks run inside fc.assert (checkSynced); this states that every run was checked.
    expect(stats.runs).toBe(RUNS)
  }, 120_000)
})
