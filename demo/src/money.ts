/** Money is integer cents; these are the only places it becomes text or is parsed. */

/** `$12.50`, `-$3.00`; never a negative zero (an amount that rounds to 0 is `$0.00`). */
export function formatCents(cents: number): string {
  const rounded = Math.round(cents)
  const sign = rounded < 0 ? '-' : ''
  const abs = Math.abs(rounded)
  return `${sign}$${Math.floor(abs / 100)}.${String(abs % 100).padStart(2, '0')}`
}

/**
 * An amount taken off a total (a discount, refunds): `−$2.50`, or `$0.00` when there is none,
 * so a report never shows "−$0.00".
 */
export function formatDeduction(cents: number): string {
  return Math.round(cents) === 0 ? formatCents(0) : `−${formatCents(Math.abs(cents))}`
}

/** Parses "12", "12.5", "12.50", "$12.50" into cents; `undefined` when it is not an amount. */
export function parseCents(text: string): number | undefined {
  const m = /^\s*\$?\s*(\d{1,7})(?:[.,](\d{1,2}))?\s*$/.exec(text)
  if (m === null) return undefined
  const whole = Number(m[1])
  const frac = m[2] === undefined ? 0 : Number(m[2].padEnd(2, '0'))
  return whole * 100 + frac
}

export function isCents(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value)
}
