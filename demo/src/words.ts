/**
 * Head office's refusals in a cashier's words. A refusal carries a code and the schema's
 * reason (`rule: text; rule: text`); the rule names are for developers, so they are mapped to
 * sentences here and never shown as they are.
 */

export interface Refusal {
  readonly code: string
  readonly reason: string
}

/** The rule names in a refusal's reason, in order. */
export function refusedRules(reason: string): string[] {
  return reason
    .split('; ')
    .map((part) => /^([A-Za-z][A-Za-z0-9_]*): /.exec(part)?.[1])
    .filter((rule): rule is string => rule !== undefined)
}

/**
 * A refusal as a sentence; `subject` names what was refused ("gift card GC-1000").
 *
 * @example
 * refusalWords({ code: 'invariant', reason: 'cardIssued: unknown gift card' }, 'gift card GC-9')
 * // 'Unknown gift card GC-9: check the code on the card.'
 */
export function refusalWords(refusal: Refusal, subject: string): string {
  const rules = refusedRules(refusal.reason)
  if (rules.includes('cardIssued')) return `Unknown ${subject}: check the code on the card.`
  if (rules.includes('balanceNonNegative')) return `Not enough balance on ${subject}.`
  if (rules.includes('refundWithinCaptured')) {
    return `Head office refused the refund: it is more than was paid on ${subject}.`
  }
  if (rules.includes('closeOnce')) return 'The business day is already closed.'
  switch (refusal.code) {
    case 'conflict':
      return `Someone changed ${subject} at the same moment; try again.`
    case 'invalid':
    case 'unknown_type':
      return `Head office could not take this for ${subject}; nothing was recorded. Tell the manager.`
    default:
      return `Head office refused this for ${subject}.`
  }
}
