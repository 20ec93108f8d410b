/**
 * A receipt as the customer takes it away: printed (the receipt view with the print
 * stylesheet) or emailed (a `mailto:` link whose body is `receiptText`). Both read the same
 * `Receipt`, so the paper and the email say the same thing.
 */
import { formatCents, formatDeduction } from './money.ts'
import { receiptNumber, type CartLine, type Tender } from './sale.ts'

export interface Receipt {
  readonly orderId: string
  readonly storeName: string
  readonly registerName: string
  readonly lines: readonly CartLine[]
  readonly subtotal: number
  readonly discount: number
  readonly discountPercent: number
  readonly total: number
  readonly tenders: readonly Tender[]
  readonly at: number
  /** The sale's entries (for the receipt's stage badge); absent on a receipt made elsewhere. */
  readonly entryIds?: readonly string[] | undefined
}

/** One line per tender: what the customer paid with. */
export function tenderLine(t: Tender): [string, string] {
  switch (t.method) {
    case 'cash':
      return ['Cash', formatCents(t.amount)]
    case 'card':
      return [
        `Card •••• ${t.last4}${t.offline ? ' (sent when online)' : ''}`,
        formatCents(t.amount),
      ]
    case 'giftcard':
      return [`Gift card ${t.card}`, formatCents(t.amount)]
  }
}

/** The receipt as plain text, for the email body. */
export function receiptText(r: Receipt): string {
  const rows: string[] = [
    `${r.storeName} · ${r.registerName}`,
    `Receipt ${receiptNumber(r.orderId)} · ${new Date(r.at).toLocaleString('en-GB')}`,
    '',
  ]
  for (const l of r.lines) rows.push(`${l.qty} × ${l.name}  ${formatCents(l.qty * l.unitPrice)}`)
  rows.push('', `Subtotal  ${formatCents(r.subtotal)}`)
  if (r.discount > 0) rows.push(`Discount ${r.discountPercent} %  ${formatDeduction(r.discount)}`)
  rows.push(`Total  ${formatCents(r.total)}`)
  for (const t of r.tenders) rows.push(tenderLine(t).join('  '))
  const cash = r.tenders.find((t) => t.method === 'cash')
  if (cash?.method === 'cash' && cash.tendered > cash.amount) {
    rows.push(
      `Cash given  ${formatCents(cash.tendered)}`,
      `Change  ${formatCents(cash.tendered - cash.amount)}`,
    )
  }
  rows.push('', 'Thank you!')
  return rows.join('\n')
}

/** A `mailto:` link with the receipt; to the customer's address when the card contact is one. */
export function receiptMailto(r: Receipt): string {
  const card = r.tenders.find((t) => t.method === 'card')
  const to = card?.method === 'card' && /^[^\s@]+@[^\s@]+$/.test(card.contact) ? card.contact : ''
  const subject = `Your receipt ${receiptNumber(r.orderId)} from ${r.storeName}`
  return `mailto:${encodeURIComponent(to)}?subject=${encodeURIComponent(subject)}&body=${encodeURIComponent(receiptText(r))}`
}
