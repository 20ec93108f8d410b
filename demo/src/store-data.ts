/**
 * One read model of the register's store for the screens (orders, stock, inbox, drawer,
 * report): a query over the orders' `dayTime` index names the day's orders (newest first), the
 * catalog names the stock, price and product ledgers, and the store's registers name the
 * drawers; the day's ledger keeps the money totals the report reads. It is an external store over the
 * client's pattern subscriptions, so every screen re-renders when any ledger of the store
 * changes: a local sale, an ack, another register's sale, a correction.
 *
 * Invariants:
 * 1. Every ledger is read with its confirmed state and this register's pending entries apart
 *    (`PosEntity`): lists show the view, the day report reads confirmed state only.
 * 2. An order's payments are `<order>-1` … `<order>-n`, one per tender of the sale.
 */
import { createReadStore, type ExternalStore } from '@ledgerline/react'
import { CATALOG, type CatalogItem, REGISTERS } from './catalog.ts'
import { DAY_ORDERS_SHOWN } from './limits.ts'
import type { PosClient, PosEntity } from './pos-client.ts'
import { scopeOf } from './pos-client.ts'
import { dayEntity, drawerEntity, type OrderPayment } from './sale.ts'
import type {
  DayState,
  DrawerState,
  OrderState,
  PaymentState,
  PriceState,
  ProductState,
  StockState,
} from './schema.ts'
import { tendersOf } from './schema.ts'
import type { Session } from './session.ts'

export interface StoreData {
  readonly date: string
  readonly day: PosEntity<DayState>
  /** This register's drawer (head office has none: an empty one). */
  readonly drawer: PosEntity<DrawerState>
  /** Every register's drawer, by register id (`r1`, …). */
  readonly drawers: ReadonlyMap<string, PosEntity<DrawerState>>
  /** By order id (without `order/`), newest first. */
  readonly orders: ReadonlyMap<string, PosEntity<OrderState>>
  /** The payments of each order, one per tender, by order id (invariant 2). */
  readonly payments: ReadonlyMap<string, readonly PosEntity<PaymentState>[]>
  readonly stock: ReadonlyMap<string, PosEntity<StockState>>
  readonly prices: ReadonlyMap<string, PosEntity<PriceState>>
  readonly products: ReadonlyMap<string, PosEntity<ProductState>>
}

/** How long change callbacks are gathered before the model is read again. */
const COALESCE_MS = 30

export function createStoreDataStore(
  client: PosClient,
  session: Session,
  date: string,
): ExternalStore<StoreData | undefined> {
  return createReadStore<StoreData | undefined>(
    () => readStoreData(client, session, date),
    (onChange) => {
      let timer: ReturnType<typeof setTimeout> | undefined
      const fire = () => {
        timer ??= setTimeout(() => {
          timer = undefined
          onChange()
        }, COALESCE_MS)
      }
      const stops = scopeOf(session).map((pattern) => client.subscribe(pattern, fire))
      return () => {
        if (timer !== undefined) clearTimeout(timer)
        for (const stop of stops) stop()
      }
    },
    undefined,
  )
}

/** The item's name: head office's, or the catalog's built-in one. */
export function productName(data: StoreData, item: CatalogItem): string {
  const name = data.products.get(item.sku)?.view.name ?? ''
  return name === '' ? item.name : name
}

/** An order's payments with their ids, as the refund needs them. */
export function orderPayments(data: StoreData, orderId: string): OrderPayment[] {
  return (data.payments.get(orderId) ?? []).map((p, i) => ({
    id: `${orderId}-${i + 1}`,
    state: p.view,
  }))
}

export type OrderSyncState = 'pending' | 'synced' | 'corrected'

/** Pending while any of its entries is in the outbox; corrected once a correction names it. */
export function orderSyncState(data: StoreData, orderId: string): OrderSyncState {
  const order = data.orders.get(orderId)
  const pays = data.payments.get(orderId) ?? []
  if (order === undefined || order.pending.length > 0 || pays.some((p) => p.pending.length > 0)) {
    return 'pending'
  }
  if (orderCorrections(data, orderId).length > 0) return 'corrected'
  return 'synced'
}

/** What head office corrected on an order, in words, on its own ledger and on the stock's. */
export function orderCorrections(data: StoreData, orderId: string): string[] {
  const words: string[] = []
  for (const n of data.orders.get(orderId)?.view.notes ?? []) {
    if (n.kind === 'order.balance_due') words.push('card declined')
    if (n.kind === 'order.price_variance') words.push('price changed meanwhile')
  }
  for (const s of data.stock.values()) {
    for (const o of s.view.oversold) if (o.order === orderId) words.push('sold beyond stock')
  }
  return [...new Set(words)]
}

export interface PendingSales {
  /** Own sales not yet at head office. */
  readonly count: number
  readonly amount: number
  readonly oldestAt: number | null
  /** The card part of them: the offline limits' card risk. */
  readonly card: { readonly amount: number; readonly oldestAt: number | null }
}

/** Own sales not yet acknowledged by the relay: count, amount, and their card part. */
export function pendingSales(data: StoreData): PendingSales {
  let count = 0
  let amount = 0
  let oldestAt: number | null = null
  let cardAmount = 0
  let cardOldestAt: number | null = null
  for (const e of data.day.pending) {
    if (e.kind !== 'day.sale') continue
    const sale = e.data as { total?: unknown; tender?: unknown; tenders?: unknown }
    count++
    amount += typeof sale.total === 'number' ? sale.total : 0
    oldestAt = oldestAt === null ? e.occurredAt : Math.min(oldestAt, e.occurredAt)
    for (const t of tendersOf(sale)) {
      if (t.method !== 'card') continue
      cardAmount += t.amount
      cardOldestAt = cardOldestAt === null ? e.occurredAt : Math.min(cardOldestAt, e.occurredAt)
    }
  }
  return { count, amount, oldestAt, card: { amount: cardAmount, oldestAt: cardOldestAt } }
}

/**
 * Other registers' sales the store hub holds that head office has not confirmed: the day
 * ledger's store layer (empty without a hub).
 */
export function storeLayerSales(data: StoreData): {
  readonly count: number
  readonly amount: number
} {
  let count = 0
  let amount = 0
  for (const e of data.day.store) {
    if (e.kind !== 'day.sale') continue
    const total = (e.data as { total?: unknown }).total
    count++
    amount += typeof total === 'number' ? total : 0
  }
  return { count, amount }
}

// ---------------------------------------------------------------------------------------------

async function readStoreData(
  client: PosClient,
  session: Session,
  date: string,
): Promise<StoreData> {
  const get = <S>(entity: string) => client.load<S>(entity)
  const registers = REGISTERS.includes(session.register)
    ? REGISTERS
    : [...REGISTERS, session.register]
  const [day, drawers] = await Promise.all([
    get<DayState>(dayEntity(session.store, date)),
    Promise.all(
      registers.map((r) => get<DrawerState>(drawerEntity({ store: session.store, register: r }))),
    ),
  ])
  // Sales from every register of the store, own pending ones included (a query reads views).
  const key = `${session.store}:${date}`
  const found = await client.query<OrderState>('order/*', {
    where: { dayTime: { gt: `${key}|`, lt: `${key}|~` } },
    orderBy: { index: 'dayTime', direction: 'desc' },
    limit: DAY_ORDERS_SHOWN,
  })
  const orderIds = found.rows.map((r) => r.entity.slice('order/'.length))
  const [orders, stock, prices, products] = await Promise.all([
    Promise.all(orderIds.map((id) => get<OrderState>(`order/${id}`))),
    Promise.all(CATALOG.map((item) => get<StockState>(`stock/${session.store}:${item.sku}`))),
    Promise.all(CATALOG.map((item) => get<PriceState>(`price/${session.store}:${item.sku}`))),
    Promise.all(CATALOG.map((item) => get<ProductState>(`product/${session.store}:${item.sku}`))),
  ])
  const payments = await Promise.all(
    orderIds.map((id, i) => {
      const tenders = Math.max(1, (orders[i] as PosEntity<OrderState>).view.tenders.length)
      return Promise.all(
        Array.from({ length: tenders }, (_, n) => get<PaymentState>(`payment/${id}-${n + 1}`)),
      )
    }),
  )
  const byRegister = new Map(registers.map((r, i) => [r, drawers[i] as PosEntity<DrawerState>]))
  return {
    date,
    day,
    drawer: byRegister.get(session.register) as PosEntity<DrawerState>,
    drawers: byRegister,
    orders: new Map(orderIds.map((id, i) => [id, orders[i] as PosEntity<OrderState>])),
    payments: new Map(orderIds.map((id, i) => [id, payments[i] as PosEntity<PaymentState>[]])),
    stock: bySku(stock),
    prices: bySku(prices),
    products: bySku(products),
  }
}

function bySku<T>(items: readonly T[]): Map<string, T> {
  return new Map(CATALOG.map((item, i) => [item.sku, items[i] as T]))
}
