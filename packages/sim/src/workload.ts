/**
 * The workload of a product simulation: the cashier of one till, a point-of-sale app that sells
 * stock, orders, voids, gift cards, loyalty points and visits through the till's real client,
 * each sale an `append` tagged with its op.
 *
 * Terms as in `history.ts`: an *op* is one `append` of the app, tagged `data.op` =
 * `<till>:<n>`.
 *
 * Invariants:
 * 1. Every sale draws from `rng` alone, in call order: the same seed sells the same things.
 * 2. Op tags are unique per till (a counter), so an op is found in the log under whatever id it
 *    travels.
 * 3. The cashier voids only lines of the current order its disk still knows: a line a restored
 *    disk forgot is not the app's to void.
 */
import type { Client } from '@ledgerline/client'
import type { Prng } from '@ledgerline/testkit'
import type { SimHistory } from './history.ts'
import type { Till } from './till.ts'

/** The cashier of one till: what it sells, as appends with op tags. */
export function createApp(
  till: Till,
  index: number,
  rng: Prng,
  history: SimHistory,
): { step(): void; pick(noteBytes: number): void } {
  let n = 0
  let orderNo = 1
  const lines: { id: string; amount: number; op: string }[] = []
  const stock = ['stock/s7:espresso-1kg', 'stock/s7:milk-1l', 'stock/s7:cups-12oz']
  const cards = ['giftcard/g-100', 'giftcard/g-200']
  const order = () => `order/s7-r${index + 1}-${String(orderNo).padStart(4, '0')}`
  const op = () => `${till.name}:${++n}`
  const confirmedVersion = (entity: string) => {
    const client = till.clients()[0] as Client | undefined
    return client?.get(entity).version ?? 0
  }
  return {
    step() {
      const x = rng.float()
      if (x < 0.3) {
        const data = { qty: -rng.int(1, 3), op: op() }
        till.append(data.op, { entity: rng.pick(stock), kind: 'stock.moved', data })
      } else if (x < 0.38) {
        const data = { qty: rng.int(5, 20), op: op() }
        till.append(data.op, { entity: rng.pick(stock), kind: 'stock.moved', data })
      } else if (x < 0.56) {
        const entity = order()
        const data = { amount: rng.int(1, 50), op: op() }
        till.append(data.op, { entity, kind: 'order.line', data }, (id) => {
          if (entity === order()) lines.push({ id, amount: data.amount, op: data.op })
        })
      } else if (x < 0.62) {
        const data = { amount: rng.int(1, 200), op: op() }
        till.append(data.op, { entity: order(), kind: 'order.paid', data })
        orderNo++
        lines.length = 0
      } else if (x < 0.67) {
        // A line its disk forgot (put back to an older copy) is not the cashier's to void: the
        // app's view of the order reloads from that disk.
        while (lines[0] !== undefined && history.ops.get(lines[0].op)?.forgotten === true) {
          lines.shift()
        }
        const line = lines.shift()
        if (line === undefined) return
        const data = { amount: line.amount, op: op() }
        till.append(data.op, {
          entity: order(),
          kind: 'order.voided',
          data,
          options: { corrects: line.id },
        })
      } else if (x < 0.72) {
        const data = { amount: rng.int(20, 100), op: op() }
        till.append(data.op, { entity: rng.pick(cards), kind: 'giftcard.issued', data })
      } else if (x < 0.82) {
        const entity = rng.pick(cards)
        const data = { amount: rng.int(5, 40), op: op() }
        const expect = rng.chance(0.7) ? confirmedVersion(entity) : undefined
        till.append(data.op, {
          entity,
          kind: 'giftcard.redeem',
          data,
          options: { intent: 'request', expect },
        })
      } else if (x < 0.9) {
        const data = { points: rng.int(1, 20), op: op() }
        till.append(data.op, { entity: `loyalty/m-${rng.int(1, 4)}`, kind: 'loyalty.earned', data })
      } else {
        const data = { n: rng.int(1, 3), op: op() }
        till.append(data.op, { entity: 'counter/s7:visits', kind: 'counter.added', data })
      }
    },
    pick(noteBytes) {
      const data = { qty: 1, note: 'n'.repeat(noteBytes), op: op() }
      till.append(data.op, { entity: 'bin/s7:returns', kind: 'bin.picked', data })
    },
  }
}
