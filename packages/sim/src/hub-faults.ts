/**
 * The store's nemesis (issue 15): what the world does to a store hub and the store's internet
 * line, queued before the start from the seed's `HubPlan`. Head office's own faults stay as
 * `schedule.ts` queues them; the registers' links to their hub fault as any till's link does.
 *
 *   upstream cuts (the hub's link alone) · store internet cuts (the hub's link and the registers'
 *   own line to head office) · hub crashes (restart on the same file) · the hub lost with its
 *   disk (a new, empty hub later, or only at the heal)
 *
 * Invariants:
 * 1. Every fault ends by the heal (`healStore`): links heal, every hub runs.
 * 2. Draws come from the nemesis stream after the other faults' draws, so a seed's head office
 *    faults are the same with and without hubs.
 */
import type { Prng, SimScheduler } from '@ledgerline/testkit'
import type { HubNode } from './hub-node.ts'
import type { HubPlan } from './run-config.ts'
import { MINUTE } from './run-config.ts'
import type { Wire } from './wire.ts'
import { CALM } from './wire.ts'

/** The name of the store's internet line on the wire. */
export const STORE_WAN = 'store-wan'

/** Queues the store's faults over `[0, end)`. */
export function scheduleStoreFaults(world: {
  readonly sched: SimScheduler
  readonly wire: Wire
  readonly plan: HubPlan
  readonly hubs: readonly HubNode[]
  readonly nemesis: Prng
  readonly end: number
}): void {
  const { sched, wire, plan, nemesis, end } = world
  const primary = world.hubs[0] as HubNode
  /** The primary hub is lost until the heal: nothing starts it before. */
  let gone = false
  for (const hub of world.hubs) wire.setFaults(hub.uplink, plan.uplinkFaults)
  const cut = (link: string, what: string, lengthMsMax: number) => {
    const at = nemesis.int(0, end)
    const length = nemesis.int(MINUTE, lengthMsMax)
    sched.at(at, `${what} cut`, () => wire.setPartitioned(link, true))
    sched.at(Math.min(at + length, end), `${what} back`, () => wire.setPartitioned(link, false))
  }
  for (let c = 0; c < plan.upstreamCuts; c++)
    cut(primary.uplink, `${primary.name} upstream`, 60 * MINUTE)
  for (let c = 0; c < plan.wanCuts; c++) cut(STORE_WAN, 'store internet', 90 * MINUTE)
  for (let c = 0; c < plan.crashes; c++) {
    const at = nemesis.int(0, end)
    const downMs = nemesis.int(100, 5 * MINUTE)
    sched.at(at, `${primary.name} crash`, () => primary.crash())
    sched.at(Math.min(at + downMs, end), `${primary.name} restart`, () => {
      if (!gone) primary.start()
    })
  }
  if (plan.diskLoss) {
    const at = nemesis.int(0, Math.floor(end * 0.8))
    sched.at(at, `${primary.name} lost with its disk`, () => {
      primary.loseDisk()
      gone = plan.diskBackMs === undefined
    })
    if (plan.diskBackMs !== undefined) {
      sched.at(Math.min(at + plan.diskBackMs, end), `${primary.name} replaced`, () =>
        primary.start(),
      )
    }
  }
}

/** Invariant 1: at the heal, the store's links are calm and whole, and every hub runs. */
export function healStore(wire: Wire, hubs: readonly HubNode[]): void {
  wire.setPartitioned(STORE_WAN, false)
  for (const hub of hubs) {
    wire.setFaults(hub.uplink, CALM)
    wire.setPartitioned(hub.uplink, false)
    if (!hub.up) hub.start()
  }
}
