/**
 * The day report of a store, or of one register of it, folded from ledgers: the day's ledger
 * (sales, refunds, declines, collections and write-offs by register and tender) and each
 * register's drawer ledger (floats, cash in and out, counts). It reads confirmed state only,
 * never a register's own pending entries or local lists, so every register that has synced
 * prints the same report.
 *
 * Terms: *takings* are the money a tender brought in: sales, less cards declined after they
 * were forwarded, less refunds, plus balances collected. *Expected cash* is what a drawer
 * should hold: each shift's float plus its cash in less its cash out.
 *
 * Invariants:
 * 1. Same confirmed ledgers in, same report out: nothing here reads the clock, the register or
 *    the outbox.
 * 2. The report of the store is the sum of the reports of its registers, to the cent.
 * 3. A register's cash takings on the day ledger are checked against its drawer ledger's cash
 *    for the day's shifts; the report says when they differ and by how much.
 */
import { REGISTERS } from './catalog.ts'
import {
  type DayMove,
  type DayState,
  type DrawerClose,
  type DrawerShift,
  drawer,
  type DrawerState,
  drawerExpected,
  EMPTY_REGISTER_DAY,
  type RegisterDay,
  TENDER_METHODS,
  type TenderMethod,
} from './schema.ts'

/** `store` for every register of the store, or one register's id (`r1`, `hq`, …). */
export type ReportScope = 'store' | string

export interface DayReportInput {
  readonly date: string
  readonly scope: ReportScope
  /** The day ledger's confirmed state. */
  readonly day: DayState
  /** Each register's drawer ledger, confirmed state, by register id. */
  readonly drawers: ReadonlyMap<string, DrawerState>
}

export interface TenderRow {
  readonly method: TenderMethod
  readonly sales: number
  readonly declined: number
  readonly refunds: number
  readonly collected: number
  readonly takings: number
}

export interface DrawerRow {
  readonly register: string
  /** Shifts opened on the report's date, closed or not. */
  readonly shifts: number
  readonly openShifts: number
  readonly float: number
  /** Cash in less cash out, as the drawer ledger has it. */
  readonly drawerCash: number
  /** Cash takings, as the day ledger has it. */
  readonly dayCash: number
  readonly expected: number
  /** Counted at the closes; `null` while a shift of the day is open. */
  readonly counted: number | null
  /** Counted less expected; `null` while a shift of the day is open. */
  readonly overShort: number | null
  /** Invariant 3: day ledger cash less drawer ledger cash (0 when they agree). */
  readonly mismatch: number
}

export interface DayReport {
  readonly date: string
  readonly scope: ReportScope
  /** The registers the report covers, in order. */
  readonly registers: readonly string[]
  readonly salesCount: number
  readonly tenders: readonly TenderRow[]
  readonly totals: Omit<TenderRow, 'method'>
  readonly writtenOff: number
  readonly drawers: readonly DrawerRow[]
  readonly expectedCash: number
  readonly countedCash: number | null
  readonly overShort: number | null
  readonly closed: { readonly at: number; readonly total: number } | null
  /** Money moves of the covered registers that arrived after the day was closed. */
  readonly afterClose: readonly DayMove[]
}

/**
 * Folds the report (invariant 1).
 *
 * @example
 * dayReport({ date: '2025-01-02', scope: 'store', day, drawers }).totals.takings // 15420
 */
export function dayReport(input: DayReportInput): DayReport {
  const registers = coveredRegisters(input)
  const days = registers.map((r) => input.day.registers[r] ?? EMPTY_REGISTER_DAY)
  const tenders = TENDER_METHODS.map((method) => tenderRow(method, days))
  // Registers with a drawer: the store's tills, and anyone else who opened a shift that day.
  const drawers = registers
    .filter(
      (r) =>
        REGISTERS.includes(r) || shiftsOn(input.drawers.get(r) ?? NO_DRAWER, input.date).length > 0,
    )
    .map((r) => drawerRow(r, input))
  let salesCount = 0
  let writtenOff = 0
  for (const d of days) {
    salesCount += d.sales
    writtenOff += d.writtenOff
  }
  let expectedCash = 0
  let countedCash: number | null = 0
  for (const d of drawers) {
    expectedCash += d.expected
    countedCash = countedCash === null || d.counted === null ? null : countedCash + d.counted
  }
  const inScope = new Set(registers)
  return {
    date: input.date,
    scope: input.scope,
    registers,
    salesCount,
    tenders,
    totals: {
      sales: sum(tenders, 'sales'),
      declined: sum(tenders, 'declined'),
      refunds: sum(tenders, 'refunds'),
      collected: sum(tenders, 'collected'),
      takings: sum(tenders, 'takings'),
    },
    writtenOff,
    drawers,
    expectedCash,
    countedCash,
    overShort: countedCash === null ? null : countedCash - expectedCash,
    closed: input.day.closed ? { at: input.day.closedAt, total: input.day.closedTotal } : null,
    afterClose: input.day.afterClose.filter((m) => inScope.has(m.register)),
  }
}

/** The shifts of `drawer` opened on `date`: its closes, then the open shift. */
export function shiftsOn(drawer: DrawerState, date: string): (DrawerShift | DrawerClose)[] {
  const shifts: (DrawerShift | DrawerClose)[] = drawer.closes.filter((c) => c.date === date)
  if (drawer.open && drawer.date === date) shifts.push(drawer)
  return shifts
}

// ---------------------------------------------------------------------------------------------

const NO_DRAWER = drawer.initial

function coveredRegisters(input: DayReportInput): string[] {
  if (input.scope !== 'store') return [input.scope]
  // The store's registers, then anyone else who moved money that day (head office writes off).
  const all = new Set<string>(REGISTERS)
  for (const r of Object.keys(input.day.registers)) all.add(r)
  for (const [r, d] of input.drawers) if (shiftsOn(d, input.date).length > 0) all.add(r)
  return [...all].sort(registerOrder)
}

function registerOrder(a: string, b: string): number {
  const rank = (r: string) => (r === 'hq' ? 1 : 0)
  return rank(a) - rank(b) || a.localeCompare(b, 'en', { numeric: true })
}

function tenderRow(method: TenderMethod, days: readonly RegisterDay[]): TenderRow {
  let sales = 0
  let declined = 0
  let refunds = 0
  let collected = 0
  for (const d of days) {
    sales += d.gross[method]
    declined += d.declined[method]
    refunds += d.refunds[method]
    collected += d.collected[method]
  }
  return {
    method,
    sales,
    declined,
    refunds,
    collected,
    takings: sales - declined - refunds + collected,
  }
}

function drawerRow(register: string, input: DayReportInput): DrawerRow {
  const d = input.day.registers[register] ?? EMPTY_REGISTER_DAY
  const dayCash = d.gross.cash - d.declined.cash - d.refunds.cash + d.collected.cash
  const drawer = input.drawers.get(register)
  const shifts = drawer === undefined ? [] : shiftsOn(drawer, input.date)
  let float = 0
  let drawerCash = 0
  let expected = 0
  let counted: number | null = 0
  let openShifts = 0
  for (const s of shifts) {
    float += s.float
    drawerCash += s.cashIn - s.cashOut
    expected += drawerExpected(s)
    if ('counted' in s) {
      if (counted !== null) counted += s.counted
    } else {
      openShifts++
      counted = null
    }
  }
  return {
    register,
    shifts: shifts.length,
    openShifts,
    float,
    drawerCash,
    dayCash,
    expected,
    counted,
    overShort: counted === null ? null : counted - expected,
    mismatch: dayCash - drawerCash,
  }
}

function sum(rows: readonly TenderRow[], field: keyof Omit<TenderRow, 'method'>): number {
  let total = 0
  for (const r of rows) total += r[field]
  return total
}
