/**
 * The conflicts inbox: every correction the relay appended in this store, said in a manager's
 * words (what happened, what to do), with whether it is still open. Derived from the ledgers'
 * folded state, so it is the same on every register of the store.
 *
 * Invariants:
 * 1. No raw entry kind or id reaches the words (`title`, `happened`, `todo`, `label`); the kind
 *    stays in `kind` for the screen's data attributes only.
 * 2. An item is open exactly while its ledger still needs an action (a recount, a balance, a
 *    name to pick); the action's entry closes it on every register.
 */
import { CATALOG, findItem } from './catalog.ts'
import { formatCents } from './money.ts'
import { receiptNumber } from './sale.ts'
import { productName, type StoreData } from './store-data.ts'
import { stockOnHand } from './schema.ts'

export type InboxKind =
  | 'stock.oversold'
  | 'order.balance_due'
  | 'order.price_variance'
  | 'drawer.over_short'
  | 'drawer.shift_refused'
  | 'drawer.cash_outside_shift'
  | 'day.post_close_adjustment'
  | 'product.name_conflict'

export interface InboxItem {
  /** The correction entry's id (a product's id for a name to pick). */
  readonly id: string
  readonly kind: InboxKind
  /** One or two plain words for the item's kind: "Stock", "Card declined", … */
  readonly label: string
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
  /** For a name to pick: the names given, with the entries that gave them. */
  readonly names?: readonly { readonly name: string; readonly entry: string }[] | undefined
}

export function inboxItems(data: StoreData, store: string): InboxItem[] {
  const items: InboxItem[] = []
  for (const [sku, snap] of data.stock) {
    const item = findItem(sku)
    const name = item === undefined ? sku : productName(data, item)
    const entity = `stock/${store}:${sku}`
    for (const o of snap.view.oversold) {
      items.push({
        id: o.id,
        kind: 'stock.oversold',
        label: 'Stock',
        title: `${name}: oversold by ${o.short}`,
        happened: `Sales made while offline took more ${name} than was on the shelf; sale ${receiptNumber(o.order)} was the one that went below zero. Both sales stand, the stock now reads ${stockOnHand(snap.view, entity)}.`,
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
          label: 'Card declined',
          title: `Card declined: ${formatCents(Number(n.data.amount))} due on sale ${receiptNumber(orderId)}`,
          happened: `The card ending ${String(n.data.last4 ?? '????')} was taken offline and declined by the issuer when it was sent on. The goods have left the store.`,
          todo:
            o.balanceDue > 0
              ? `Contact the customer (${contact}) and collect ${formatCents(o.balanceDue)}, or write it off.`
              : o.writtenOff > 0
                ? `Written off (${formatCents(o.writtenOff)}). Nothing left to do.`
                : 'Collected. Nothing left to do.',
          open: o.balanceDue > 0,
          at: n.at,
          entity: `order/${orderId}`,
          order: orderId,
          amount: o.balanceDue,
        })
      } else if (n.kind === 'order.price_variance') {
        const sku = String(n.data.sku)
        const item = findItem(sku)
        items.push({
          id: n.id,
          kind: 'order.price_variance',
          label: 'Price',
          title: `Price changed meanwhile on sale ${receiptNumber(orderId)}: ${item === undefined ? sku : productName(data, item)}`,
          happened: `Charged ${formatCents(Number(n.data.charged))} while head office's price was ${formatCents(Number(n.data.listed))} (the register had not heard of the change). The receipt price stands; ${formatCents(Number(n.data.delta))} is recorded for margin.`,
          todo: 'Nothing to collect. Refunds of this sale use the charged price.',
          open: false,
          at: n.at,
          entity: `order/${orderId}`,
          order: orderId,
          sku,
        })
      }
    }
  }
  for (const [register, snap] of data.drawers) {
    const who = registerName(register)
    for (const c of snap.view.closes) {
      if (c.delta === 0 || c.correction === undefined) continue
      items.push({
        id: c.correction,
        kind: 'drawer.over_short',
        label: 'Drawer',
        title: `${who}: drawer ${c.delta > 0 ? 'over' : 'short'} by ${formatCents(Math.abs(c.delta))} (shift ${c.shift})`,
        happened: `Counted ${formatCents(c.counted)}, expected ${formatCents(c.expected)} from the float and the cash sales, collections and refunds.`,
        todo: 'Recount if unsure; otherwise note the reason for the audit.',
        open: false,
        at: c.at,
        entity: '',
      })
    }
    for (const n of snap.view.notes) {
      const shift = Number(n.data.shift ?? 0)
      const cash = n.kind === 'drawer.cash_outside_shift'
      items.push({
        id: n.id,
        kind: cash ? 'drawer.cash_outside_shift' : 'drawer.shift_refused',
        label: 'Shift',
        title: cash
          ? `${who}: ${formatCents(Math.abs(Number(n.data.amount)))} of cash moved with no shift open`
          : `${who}: a shift ${n.data.code === 'already_open' ? 'was opened twice' : 'close was not counted'}`,
        happened: cash
          ? `Cash for sale ${receiptNumber(String(n.data.order))} was recorded while no shift was open on this drawer. The sale stands; the cash belongs to no shift count.`
          : n.data.code === 'already_open'
            ? `Shift ${shift} was already open; the second opening changed nothing.`
            : n.data.code === 'already_closed'
              ? `Shift ${shift} was already closed; the second close changed nothing.`
              : 'No shift was open, so there was nothing to close: no over or short was recorded and the shift number did not move.',
        todo: cash
          ? 'Count the drawer with the next shift close and note the reason for the audit.'
          : 'Nothing to do; open a shift before taking cash.',
        open: false,
        at: n.at,
        entity: '',
      })
    }
  }
  for (const a of data.day.view.adjustments) {
    items.push({
      id: a.id,
      kind: 'day.post_close_adjustment',
      label: 'After close',
      title: `Arrived after the day was closed: sale ${receiptNumber(String(a.data.order))}`,
      happened: `A sale, refund or collection of ${formatCents(Number(a.data.amount))} reached head office after the business day was closed. The closed total stays as it was.`,
      todo: 'It is listed under “After the close” in the day report.',
      open: false,
      at: a.at,
      entity: '',
    })
  }
  for (const item of CATALOG) {
    const p = data.products.get(item.sku)?.view
    if (p === undefined || p.candidates.length === 0) continue
    const names = p.candidates.map((c) => ({
      name: c.name === '' ? item.name : c.name,
      entry: c.entry,
    }))
    items.push({
      id: `product/${store}:${item.sku}`,
      kind: 'product.name_conflict',
      label: 'Name',
      title: `Two names for ${item.name}: ${names.map((n) => `“${n.name}”`).join(' or ')}`,
      happened:
        'The item was renamed in two places while they were offline. Both names are in its history; registers show the first one until head office picks.',
      todo: 'Head office: pick the name the registers and receipts should show.',
      open: true,
      at: Math.max(...p.candidates.map((c) => c.at)),
      entity: `product/${store}:${item.sku}`,
      sku: item.sku,
      names,
    })
  }
  return items.sort((a, b) => Number(b.open) - Number(a.open) || b.at - a.at)
}

/** `Register 1`, or `Head office` for `hq`. */
export function registerName(register: string): string {
  return register === 'hq' ? 'Head office' : `Register ${register.replace(/^r/, '')}`
}
