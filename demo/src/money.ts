/** Money is integer cents; these are the only places it becomes text or is parsed. */

export function formatCents(cents: number): string {
  const sign = cents < 0 ? '-' : ''
  const abs = Math.abs(Math.round(cents))
  return `${sign}$${Math.floor(abs / 100)}.${String(abs % 100).padStart(2, '0')}`
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
