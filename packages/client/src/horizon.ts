/**
 * The horizon (`createClient({ horizon })`): which entities a bootstrap brings with their whole
 * ledger instead of the relay's snapshot. The app names a type or a pattern and a number of
 * days; the wire's `whole` rules name a pattern and a time (protocol `HorizonRule`).
 *
 * Invariants:
 * 1. A bad horizon fails `createClient` with kind `invalid` naming the rule: a pattern core
 *    refuses, a type name with a `/`, days not a finite number ≥ 0, more than HORIZON_RULES_MAX
 *    rules.
 * 2. `since` is measured when the subscription is sent (the client's clock), so "7 days" is
 *    always the last 7 days.
 */
import { checkPattern } from '@ledgerline/core'
import type { HorizonRule } from '@ledgerline/protocol'
import type { HorizonOption } from './client-api.ts'
import { ClientError, fromLedgerError } from './errors.ts'
import { HORIZON_RULES_MAX } from './limits.ts'

const DAY_MS = 24 * 60 * 60 * 1000

/**
 * The checked horizon, as a function of the time of the subscription.
 *
 * @example
 * horizonRules([{ type: 'order', days: 7 }])(now) // [{ pattern: 'order/*', since: now - 7 days }]
 */
export function horizonRules(
  options: readonly HorizonOption[],
): (now: number) => readonly HorizonRule[] {
  if (options.length > HORIZON_RULES_MAX) {
    throw new ClientError(
      'invalid',
      `horizon has ${options.length} rules; at most ${HORIZON_RULES_MAX} (HORIZON_RULES_MAX)`,
    )
  }
  const rules = options.map((rule, i) => {
    const at = `horizon[${i}]`
    if (typeof rule.days !== 'number' || !Number.isFinite(rule.days) || rule.days < 0)
      throw new ClientError('invalid', `${at}.days must be a finite number of days, 0 or more`)
    let pattern: string
    if ('type' in rule) {
      if (typeof rule.type !== 'string' || rule.type === '' || rule.type.includes('/'))
        throw new ClientError('invalid', `${at}.type must be an entity type name (no '/')`)
      pattern = `${rule.type}/*`
    } else {
      pattern = rule.pattern
    }
    try {
      checkPattern(pattern)
    } catch (error) {
      throw fromLedgerError(error)
    }
    return { pattern, ms: rule.days * DAY_MS }
  })
  return (now) => rules.map((r) => ({ pattern: r.pattern, since: Math.max(0, now - r.ms) }))
}
