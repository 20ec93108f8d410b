/**
 * The script of one product simulation run, queued on the scheduler before it starts: when each
 * till's cashier sells (`workload.ts`), the nemesis (offline stretches, power cuts, clock
 * jumps, tab reloads, relay crashes) and the edge faults that are switched on (disk restores,
 * the impostor, log restores, stale tokens, an oversized burst, a rollout).
 *
 * Terms as in `run-config.ts` (edge faults) and `history.ts` (op).
 *
 * Invariants:
 * 1. Every time and choice comes from the `root` and `nemesis` forks, drawn in one fixed order
 *    (the workload first, then the nemesis, then each edge fault): the same seed and config
 *    queue the same events (`run.ts` invariant 1).
 * 2. Only the edge faults the config switched on are queued (`run-config.ts` invariant 2).
 *    Every fault starts before the workload ends (`durationMs`); the heal ends what is still on
 *    then (`run.ts` invariant 2).
 * 3. What a fault destroys on purpose is recorded in the history as it happens (a disk put back
 *    forgets its ops, the time of a log restore), so the checkers do not count it against the
 *    product.
 */
import { ENTRY_DATA_BYTES_MAX } from '@ledgerline/protocol'
import type { Prng } from '@ledgerline/testkit'
import type { DiskImage } from './device-disk.ts'
import type { SimHistory } from './history.ts'
import type { Impostor } from './impostor.ts'
import { createImpostor } from './impostor.ts'
import { SIM_CLOCK_JUMP_BACK_MS_MAX, SIM_OVERSIZED_BURST_ENTRIES } from './limits.ts'
import type { RelayNode } from './relay-node.ts'
import type { ProductSimConfig } from './run-config.ts'
import { MINUTE, TENANT } from './run-config.ts'
import { productSchema } from './schema.ts'
import type { SimLoop } from './sim-loop.ts'
import { createLife } from './sim-loop.ts'
import type { Till } from './till.ts'
import type { TokenBook } from './token-book.ts'
import type { Wire } from './wire.ts'
import { createApp } from './workload.ts'

/** What the script did, for the run's figures; the impostor's life ends at the heal. */
export interface Scheduled {
  restores: number
  logRestores: number
  impostor: Impostor | undefined
  impostorLife: ReturnType<typeof createLife> | undefined
}

export interface World {
  readonly sched: SimLoop['sched']
  readonly wire: Wire
  readonly config: ProductSimConfig
  readonly root: Prng
  readonly nemesis: Prng
  readonly tills: readonly Till[]
  readonly relay: RelayNode
  readonly history: SimHistory
  readonly tokens: TokenBook
  /** Tills whose token function hands out a stale token, until when (simulated). */
  readonly staleUntil: Map<string, number>
}

/** Queues the workload and the nemesis (with the edge faults that are switched on). */
export function schedule(world: World): Scheduled {
  const { sched, config, root, nemesis, tills, relay, history, tokens, staleUntil } = world
  const out: Scheduled = {
    restores: 0,
    logRestores: 0,
    impostor: undefined,
    impostorLife: undefined,
  }
  const end = config.durationMs
  // Workload: each till's cashier appends at random times over the run.
  tills.forEach((till, i) => {
    const app = createApp(till, i, root.fork(`app-${till.name}`), history)
    const rng = root.fork(`times-${till.name}`)
    const meanGapMs = end / config.opsPerTill
    let t = 0
    for (;;) {
      t += Math.max(1, Math.floor(-Math.log(1 - rng.float()) * meanGapMs))
      if (t >= end) break
      sched.at(t, `${till.name} op`, () => app.step())
    }
    if (config.edge.oversized && i === 0) {
      // One offline burst of over-picks of an empty bin: their acks do not fit one frame.
      const at = nemesis.int(MINUTE, Math.max(MINUTE + 1, end / 2))
      sched.at(at, `${till.name} offline burst`, () => {
        till.setOnline(false, false)
        for (let n = 0; n < SIM_OVERSIZED_BURST_ENTRIES; n++) app.pick(16)
        // And one note so long its correction cannot be an entry.
        app.pick(ENTRY_DATA_BYTES_MAX - 64)
      })
      sched.at(at + 10 * MINUTE, `${till.name} back online`, () => till.setOnline(true, true))
    }
  })

  // Nemesis: offline stretches, power cuts, clock jumps, tab reloads per till.
  for (const till of tills) {
    for (let s = nemesis.int(0, 3); s > 0; s--) {
      const start = nemesis.int(0, end)
      const length = nemesis.int(MINUTE, 90 * MINUTE)
      const tell = nemesis.chance(0.5)
      sched.at(start, `${till.name} offline`, () => till.setOnline(false, tell))
      sched.at(Math.min(start + length, end), `${till.name} online`, () =>
        till.setOnline(true, tell),
      )
    }
    for (let c = nemesis.int(0, 2); c > 0; c--) {
      const at = nemesis.int(0, end)
      const downMs = nemesis.int(1_000, 10 * MINUTE)
      sched.at(at, `${till.name} power cut`, () => till.crash())
      sched.at(Math.min(at + downMs, end), `${till.name} power on`, () => void till.boot())
    }
    if (nemesis.chance(0.5)) {
      const back = nemesis.int(MINUTE, SIM_CLOCK_JUMP_BACK_MS_MAX)
      sched.at(nemesis.int(0, end), `${till.name} clock jump`, () => till.jumpClock(-back))
    }
    for (let r = nemesis.int(0, 2); r > 0; r--) {
      sched.at(nemesis.int(0, end), `${till.name} tab reload`, () => void till.reloadTab())
    }
  }
  for (let c = 0; c < config.relayCrashes; c++) {
    const at = nemesis.int(0, end)
    sched.at(at, 'relay crash', () => relay.crash())
    sched.at(at + nemesis.int(100, 30_000), 'relay restart', () => {
      if (!relay.up) void relay.start()
    })
  }

  // Edge faults (invariant 2).
  if (config.edge.restores) {
    for (const till of tills) {
      if (!nemesis.chance(0.7)) continue
      const copyAt = nemesis.int(0, Math.floor(end * 0.6))
      const restoreAt = nemesis.int(copyAt + 5 * MINUTE, Math.max(copyAt + 5 * MINUTE, end))
      // Half the restored tills sell offline first: their new sales reuse clientSeqs the log
      // holds with other content (issue 12 case 2), which only a dedupe by content catches.
      const offlineMs = nemesis.chance(0.5) ? nemesis.int(2 * MINUTE, 20 * MINUTE) : 0
      let image: DiskImage | undefined
      sched.at(copyAt, `${till.name} disk copied`, () => {
        image = till.copyDisk()
      })
      sched.at(restoreAt, `${till.name} disk restored`, () => {
        if (image === undefined) return
        out.restores++
        till.crash()
        till.restoreDisk(image)
        history.forgot(till.name, copyAt)
        history.diskRestores.push({ till: till.name, copiedAt: copyAt, at: sched.now() })
        if (offlineMs > 0) {
          till.setOnline(false, true)
          sched.after(offlineMs, `${till.name} online after its restore`, () =>
            till.setOnline(true, true),
          )
        }
        void till.boot()
      })
    }
  }
  if (config.edge.impostor) {
    const life = createLife(sched, 'impostor')
    out.impostorLife = life
    const impostor = createImpostor({
      sched,
      wire: world.wire,
      rng: root.fork('impostor'),
      life,
      history,
      tenant: TENANT,
      token: () => tokens.current('impostor', relay.now()),
      now: relay.now,
    })
    out.impostor = impostor
    for (let s = nemesis.int(1, 3); s > 0; s--) {
      sched.at(nemesis.int(end / 4, end), 'impostor strikes', () => impostor.strike())
    }
  }
  if (config.edge.logRestores) {
    const copyAt = nemesis.int(0, Math.floor(end / 2))
    const restoreAt = nemesis.int(copyAt + 5 * MINUTE, Math.max(copyAt + 5 * MINUTE, end))
    let copied = false
    sched.at(copyAt, 'relay log copied', () => {
      copied = relay.backup()
    })
    sched.at(restoreAt, 'relay log restored', () => {
      if (!copied) return
      out.logRestores++
      relay.crash()
      relay.restoreBackup()
      history.logRestoredAt = sched.now()
      void relay.start()
    })
  }
  if (config.edge.expiringTokens) {
    for (const till of tills) {
      if (!nemesis.chance(0.5)) continue
      const from = nemesis.int(0, end)
      const until = from + nemesis.int(2 * MINUTE, 10 * MINUTE)
      sched.at(from, `${till.name} token cache goes stale`, () => staleUntil.set(till.name, until))
    }
  }
  if (config.edge.rollouts) {
    sched.at(nemesis.int(end / 4, end), 'relay upgraded', () => {
      relay.setSchema(productSchema)
      relay.crash()
      void relay.start()
    })
  }
  return out
}
