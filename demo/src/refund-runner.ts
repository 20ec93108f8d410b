/**
 * Runs a refund: a `payment.refunded` request per tender part (only head office knows what
 * was captured), then, for the parts it accepted, the refund's facts (sale.ts `refundDrafts`).
 * Progress is kept per order outside React, so a cashier who switches screens while head
 * office decides still sees it, and the facts are appended even if the dialog is gone.
 *
 * Invariants:
 * 1. Facts are appended only for parts head office accepted, once per run.
 * 2. A refund head office accepted whose facts never got appended (the page was reloaded, the
 *    connection dropped) shows as unfinished (`unfinishedRefundParts`), and finishing it
 *    appends exactly the difference.
 */
import { DECISION_WAIT_MS } from './limits.ts'
import type { PosClient } from './pos-client.ts'
import { refundDrafts, type OrderPayment, type RefundInput, type RefundPart } from './sale.ts'
import type { OrderState } from './schema.ts'
import type { Session } from './session.ts'
import { refusalWords } from './words.ts'

/** A refund as the cashier confirmed it: every part, before head office decided any. */
export type RefundPlan = Omit<RefundInput, 'session'>

export type RefundProgress =
  | { readonly _tag: 'deciding' }
  | { readonly _tag: 'done'; readonly refunded: number; readonly refused: readonly string[] }
  | { readonly _tag: 'failed'; readonly message: string }

/** The latest progress of a refund of `orderId` in this tab, if one ran. */
export function refundProgress(orderId: string): RefundProgress | undefined {
  return progress.get(orderId)
}

export function onRefundProgress(cb: () => void): () => void {
  listeners.add(cb)
  return () => {
    listeners.delete(cb)
  }
}

/** Forgets the shown result of an order's refund (the cashier dismissed it). */
export function clearRefundProgress(orderId: string): void {
  if (progress.get(orderId)?._tag === 'deciding') return
  progress.delete(orderId)
  changed()
}

/** Runs `plan` (invariant 1); resolves with the final progress. */
export async function runRefund(
  client: PosClient,
  session: Session,
  plan: RefundPlan,
): Promise<RefundProgress> {
  set(plan.orderId, { _tag: 'deciding' })
  try {
    const requests = await Promise.all(
      plan.parts.map((p) =>
        client.append(
          `payment/${p.paymentId}`,
          'payment.refunded',
          { amount: p.amount, order: plan.orderId, reason: plan.reason },
          { intent: 'request' },
        ),
      ),
    )
    const accepted: RefundPart[] = []
    const refused: string[] = []
    for (const [i, request] of requests.entries()) {
      const part = plan.parts[i] as RefundPart
      const outcome = await decision(client, request.id)
      if (outcome === undefined) {
        return set(plan.orderId, {
          _tag: 'failed',
          message:
            'The connection changed before head office answered. If it accepts the refund, the order shows it as unfinished: finish it there.',
        })
      }
      if (outcome._tag === 'refused') {
        refused.push(
          refusalWords(
            outcome,
            `the ${part.method === 'giftcard' ? 'gift card' : part.method} payment`,
          ),
        )
      } else {
        accepted.push(part)
      }
    }
    let refunded = 0
    for (const p of accepted) refunded += p.amount
    if (accepted.length > 0) {
      await client.appendMany(
        refundDrafts({
          session,
          orderId: plan.orderId,
          saleEntry: plan.saleEntry,
          date: plan.date,
          parts: accepted,
          // Units go back to the shelf only when the whole refund went through.
          lines: refused.length === 0 ? plan.lines : [],
          reason: plan.reason,
          void: plan.void && refused.length === 0,
        }),
      )
    }
    return set(plan.orderId, { _tag: 'done', refunded, refused })
  } catch (error) {
    return set(plan.orderId, {
      _tag: 'failed',
      message: `The refund was not recorded: ${error instanceof Error ? error.message : String(error)}`,
    })
  }
}

/**
 * Parts head office accepted (confirmed on the payments) that the order's refund facts do not
 * name yet (invariant 2), payment by payment.
 *
 * @example
 * unfinishedRefundParts(order, payments) // [{ paymentId: 'o-2', method: 'cash', amount: 300, … }]
 */
export function unfinishedRefundParts(
  order: OrderState,
  confirmedPayments: readonly OrderPayment[],
): RefundPart[] {
  const parts: RefundPart[] = []
  for (const p of confirmedPayments) {
    const missing = p.state.refunded - (order.refundedBy[p.id] ?? 0)
    if (missing <= 0) continue
    parts.push({
      paymentId: p.id,
      method: p.state.method === '' ? 'cash' : p.state.method,
      amount: missing,
      card: p.state.method === 'giftcard' ? p.state.last4 : '',
    })
  }
  return parts
}

// ---------------------------------------------------------------------------------------------

const progress = new Map<string, RefundProgress>()
const listeners = new Set<() => void>()

function set(orderId: string, p: RefundProgress): RefundProgress {
  progress.set(orderId, p)
  changed()
  return p
}

function changed(): void {
  for (const l of listeners) l()
}

/** Head office's decision, waiting as long as this client runs; `undefined` once it closed. */
async function decision(client: PosClient, id: string) {
  for (;;) {
    const outcome = await client.outcome(id, { waitMs: DECISION_WAIT_MS })
    if (outcome._tag !== 'outbox' && outcome._tag !== 'unknown') return outcome
    if (client.status().closed !== null) return undefined
  }
}
