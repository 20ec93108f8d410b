/**
 * One read model of the register's store for the lists (orders, stock, inbox, report): the
 * day's ledger names the orders, the catalog names the stock and price ledgers. It is an
 * external store over the client's pattern subscriptions, so every screen re-renders when any
 * ledger of the store changes: a local sale, an ack, another register's sale, a correction.
 */
import type { EntityState } from '@ledgerline/client'
import { createReadStore, type ExternalStore } from '@ledgerline/react'
import { CATALOG } from './catalog.ts'
import type { PosClient } from './pos-client.ts'
import { scopeOf } from './pos-client.ts'
import { dayEntity, drawerEntity } from './sale.ts'
import type {
  DayState,
  DrawerState,
  OrderState,
  PaymentState,
  PriceState,
  StockState,
} from './schema.ts'
import type { Session } from './session.ts'

export interface StoreData {
  readonly date: string
  readonly day: EntityState<DayState>
  readonly drawer: EntityState<DrawerState>
  /** By order id (without `order/`), newest first. */
  readonly orders: ReadonlyMap<string, EntityState<OrderState>>
  /** The first payment of each order, by order id. */
  readonly payments: ReadonlyMap<string, EntityState<PaymentState>>
  readonly stock: ReadonlyMap<string, EntityState<StockState>>
  readonly prices: ReadonlyMap<string, EntityState<PriceState>>
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

async function readStoreData(
  client: PosClient,
  session: Session,
  date: string,
): Promise<StoreData> {
  const get = <S>(entity: string) => client.load<S>(entity)
  const [day, drawer] = await Promise.all([
    get<DayState>(dayEntity(session.store, date)),
    get<DrawerState>(drawerEntity(session)),
  ])
  // Sales from every register of the store, own pending ones included (they are in the view).
  const orderIds = [...new Set(day.view.sales.map((s) => s.order))].reverse()
  const [orders, payments, stock, prices] = await Promise.all([
    Promise.all(orderIds.map((id) => get<OrderState>(`order/${id}`))),
    Promise.all(orderIds.map((id) => get<PaymentState>(`payment/${id}-1`))),
    Promise.all(CATALOG.map((item) => get<StockState>(`stock/${session.store}:${item.sku}`))),
    Promise.all(CATALOG.map((item) => get<PriceState>(`price/${session.store}:${item.sku}`))),
  ])
  return {
    date,
    day,
    drawer,
    orders: new Map(orderIds.map((id, i) => [id, orders[i] as EntityState<OrderState>])),
    payments: new Map(orderIds.map((id, i) => [id, payments[i] as EntityState<PaymentState>])),
    stock: new Map(CATALOG.map((item, i) => [item.sku, stock[i] as EntityState<StockState>])),
    prices: new Map(CATALOG.map((item, i) => [item.sku, prices[i] as EntityState<PriceState>])),
  }
}

export type OrderSyncState = 'pending' | 'synced' | 'corrected'

/** Pending while any of its entries is in the outbox; corrected once a correction names it. */
export function orderSyncState(data: StoreData, orderId: string): OrderSyncState {
  const order = data.orders.get(orderId)
  const pay = data.payments.get(orderId)
  if (order === undefined || order.pending.length > 0 || (pay?.pending.length ?? 0) > 0) {
    return 'pending'
  }
  if (orderCorrections(data, orderId).length > 0) return 'corrected'
  return 'synced'
}

/** The kinds of the corrections that name an order, on its own ledger and on the stock's. */
export function orderCorrections(data: StoreData, orderId: string): string[] {
  const kinds: string[] = []
  for (const n of data.orders.get(orderId)?.view.notes ?? []) {
    if (n.kind === 'order.balance_due' || n.kind === 'order.price_variance') kinds.push(n.kind)
  }
  for (const s of data.stock.values()) {
    for (const o of s.view.oversold) if (o.order === orderId) kinds.push('stock.oversold')
  }
  return kinds
}

/** Own sales not yet acknowledged by the relay: count and amount (for the status bar). */
export function pendingSales(data: StoreData): {
  count: number
  amount: number
  oldestAt: number | null
} {
  let count = 0
  let amount = 0
  let oldestAt: number | null = null
  for (const e of data.day.pending) {
    if (e.kind !== 'day.sale') continue
    count++
    const total = (e.data as { total?: unknown }).total
    amount += typeof total === 'number' ? total : 0
    oldestAt = oldestAt === null ? e.occurredAt : Math.min(oldestAt, e.occurredAt)
  }
  return { count, amount, oldestAt }
}
