/**
 * The conflicts inbox: every correction the relay appended in this store, said in a manager's
 * words (what happened, what to do), with whether it is still open. Derived from the ledgers'
 * folded state, so it is the same on every register of the store.
 */
import { findItem } from './catalog.ts'
import { formatCents } from './money.ts'
import { receiptNumber } from './sale.ts'
import type { StoreData } from './store-data.ts'
import { stockOnHand } from './schema.ts'

export type InboxKind =
  | 'stock.oversold'
  | 'order.balance_due'
  | 'order.price_variance'
  | 'drawer.over_short'
  | 'day.post_close_adjustment'

export interface InboxItem {
  /** The correction entry's id. */
  readonly id: string
  readonly kind: InboxKind
  readonly title: string
  readonly happened: string
  readonly todo: string
  readonly open: boolean
  readonly at: number
  /** The ledger the action goes to. */
  readonly entity: string
  readonly order?: string | undefined
  readonly sku?: string | undefined
  readonly amount?: number | undefined
}

export function inboxItems(data: StoreData, store: string): InboxItem[] {
  const items: InboxItem[] = []
  for (const [sku, snap] of data.stock) {
    const name = findItem(sku)?.name ?? sku
    const entity = `stock/${store}:${sku}`
    for (const o of snap.view.oversold) {
      items.push({
        id: o.id,
        kind: 'stock.oversold',
        title: `${name}: oversold by ${o.short}`,
        happened: `Sales made while offline took more ${name} than was on the shelf; order ${receiptNumber(o.order)} was the one that went below zero. Both sales stand, the stock now reads ${stockOnHand(snap.view, entity)}.`,
        todo: snap.view.recountDue
          ? 'Count the shelf and record the count; contact the customer if the item was not there.'
          : 'Counted. Nothing left to do.',
        open: snap.view.recountDue,
        at: o.at,
        entity,
        order: o.order,
        sku,
      })
    }
  }
  for (const [orderId, snap] of data.orders) {
    const o = snap.view
    for (const n of o.notes) {
      if (n.kind === 'order.balance_due') {
        const contact =
          typeof n.data.contact === 'string' && n.data.contact !== ''
            ? n.data.contact
            : 'no contact taken'
        items.push({
          id: n.id,
          kind: 'order.balance_due',
          title: `Card declined: ${formatCents(Number(n.data.amount))} due on order ${receiptNumber(orderId)}`,
          happened: `The card ending ${String(n.data.last4 ?? '????')} was taken offline and declined by the issuer when it was forwarded. The goods have left the store.`,
          todo:
            o.balanceDue > 0
              ? `Contact the customer (${contact}) and collect ${formatCents(o.balanceDue)}, or write it off.`
              : 'Settled. Nothing left to do.',
          open: o.balanceDue > 0,
          at: n.at,
          entity: `order/${orderId}`,
          order: orderId,
          amount: o.balanceDue,
        })
      } else if (n.kind === 'order.price_variance') {
        const sku = String(n.data.sku)
        items.push({
          id: n.id,
          kind: 'order.price_variance',
          title: `Price variance on order ${receiptNumber(orderId)}: ${findItem(sku)?.name ?? sku}`,
          happened: `Charged ${formatCents(Number(n.data.charged))} while head office's price was ${formatCents(Number(n.data.listed))} (the register had not heard of the change). The receipt price stands; ${formatCents(Number(n.data.delta))} is recorded for margin.`,
          todo: 'Nothing to collect. Refunds of this order use the charged price.',
          open: false,
          at: n.at,
          entity: `order/${orderId}`,
          order: orderId,
          sku,
        })
      }
    }
  }
  for (const c of data.drawer.view.closes) {
    if (c.delta === 0 || c.correction === undefined) continue
    items.push({
      id: c.correction,
      kind: 'drawer.over_short',
      title: `Drawer ${c.delta > 0 ? 'over' : 'short'} by ${formatCents(Math.abs(c.delta))} (shift ${c.shift})`,
      happened: `Counted ${formatCents(c.counted)}, expected ${formatCents(c.expected)} from the float and the cash sales and refunds.`,
      todo: 'Recount if unsure; otherwise note the reason for the audit.',
      open: false,
      at: c.at,
      entity: '',
    })
  }
  for (const a of data.day.view.adjustments) {
    items.push({
      id: a.id,
      kind: 'day.post_close_adjustment',
      title: `Late entry after the day was closed: order ${receiptNumber(String(a.data.order))}`,
      happened: `A sale or refund of ${formatCents(Number(a.data.amount))} reached head office after the business day was closed. The closed report stays as it was.`,
      todo: 'It is carried into the next report as a post-close adjustment.',
      open: false,
      at: a.at,
      entity: '',
    })
  }
  return items.sort((a, b) => Number(b.open) - Number(a.open) || b.at - a.at)
}
