// The decision's test fixtures, shared by decide.test.ts and corrections.test.ts: a stock type
// whose nonNegative invariant drafts an oversold correction (and a balance_due on an order), a
// valid sale entry, and helpers that insist on an append or a LedgerError.
import type { Decision } from './decide.ts'
import type { Entry } from './entry.ts'
import { validateEntry } from './entry.ts'
import { LedgerError } from './errors.ts'
import type { CorrectionDraft } from './schema.ts'
import { defineEntity, defineSchema } from './schema.ts'

export const CID = '0123456789abcdef0123456789abcdef'
export const NOW = 1_732_700_000_000

export interface Stock {
  readonly onHand: number
}

export function makeSchema(correct?: (s: Stock, e: Entry) => readonly CorrectionDraft[]) {
  const stock = defineEntity<Stock>({
    type: 'stock',
    initial: { onHand: 0 },
    reduce: (s, e) => {
      if (e.kind === 'stock.boom') throw new Error('cannot fold a boom')
      if (e.kind === 'stock.moved' || e.kind === 'stock.recounted')
        return { onHand: s.onHand + e.data.qty }
      return s
    },
    invariants: { nonNegative: (s) => s.onHand >= 0 || 'stock below zero' },
    correct:
      correct === undefined
        ? (s, _broken, e) => [
            { kind: 'stock.oversold', data: { short: -s.onHand, sale: e.id } },
            { kind: 'order.balance_due', data: { sale: e.id }, entity: 'order/s7-r1-0042' },
          ]
        : (s, _broken, e) => correct(s, e),
    validate: (e) => (e.kind.startsWith('stock.') ? true : `kind ${e.kind} is not a stock kind`),
  })
  const order = defineEntity({ type: 'order', initial: {}, reduce: (s) => s })
  return defineSchema(stock, order)
}

export const schema = makeSchema()

export function makeEntry(over: Partial<Entry> = {}, seq = 7): Entry {
  return validateEntry({
    id: `${CID}-${seq}`,
    tenant: 'acme',
    entity: 'stock/s7:espresso-1kg',
    kind: 'stock.moved',
    data: { qty: -3 },
    intent: 'fact',
    clientId: CID,
    clientSeq: seq,
    hlc: `001732700000000:00000:${CID}`,
    occurredAt: NOW - 5000,
    ...over,
  })
}

export function append(decision: Decision) {
  if (decision._tag !== 'append')
    throw new Error(`expected append, got ${JSON.stringify(decision)}`)
  return decision
}

export function ledgerError(fn: () => unknown): LedgerError {
  try {
    fn()
  } catch (error) {
    if (error instanceof LedgerError) return error
    throw new Error(`expected a LedgerError, got ${String(error)}`)
  }
  throw new Error('expected a LedgerError, nothing was thrown')
}
