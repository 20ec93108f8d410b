// Goal: each correction rule of the point-of-sale schema fires exactly when its conflict
// happens, once, against the right entity; requests are refused with a reason. Method: run the
// schema through core's `decide` (the same function the relay's server log uses) on small
// ledgers built entry by entry.
import { decide, type Entry, type Head } from '@ledgerline/core'
import { describe, expect, it } from 'vitest'
import schema, {
  type DayState,
  type DrawerState,
  type OrderState,
  type PaymentState,
  type PriceState,
  type StockState,
  stockOnHand,
} from './schema.ts'

const CLIENT_A = 'a'.repeat(32)
const CLIENT_B = 'b'.repeat(32)
let seq = 0

function entry(
  entity: string,
  kind: string,
  data: Record<string, unknown>,
  opts: { client?: string; at?: number; intent?: 'fact' | 'request' } = {},
): Entry {
  const clientId = opts.client ?? CLIENT_A
  const clientSeq = ++seq
  return {
    id: `${clientId}-${clientSeq}`,
    tenant: 't',
    entity,
    kind,
    data: data as Entry['data'],
    intent: opts.intent ?? 'fact',
    clientId,
    clientSeq,
    hlc: `${String(opts.at ?? 1000).padStart(15, '0')}:00000:${clientId.slice(0, 4)}`,
    occurredAt: opts.at ?? 1000,
  }
}

/** A tiny server log: applies decisions, including corrections to other entities. */
function createLog() {
  const heads = new Map<string, Head>()
  const head = (entity: string): Head =>
    heads.get(entity) ?? { state: schema.typeOf(entity).initial, version: 0 }
  const entries: Entry[] = []
  return {
    append(e: Entry) {
      const d = decide(schema, head(e.entity), e, 5000)
      if (d._tag === 'refuse') return d
      heads.set(e.entity, { state: d.state, version: head(e.entity).version + 1 })
      entries.push(e)
      for (const c of d.corrections) {
        entries.push(c)
        if (c.entity === e.entity) {
          heads.set(c.entity, { state: head(c.entity).state, version: head(c.entity).version + 1 })
        } else {
          const h = head(c.entity)
          heads.set(c.entity, {
            state: schema.typeOf(c.entity).reduce(h.state, c),
            version: h.version + 1,
          })
        }
      }
      return d
    },
    state: <S>(entity: string) => head(entity).state as S,
    kinds: () => entries.map((e) => e.kind),
  }
}

describe('stock', () => {
  it('two sales of the last unit: both stand, one stock.oversold, stock reads -1', () => {
    const log = createLog()
    const e = 'stock/s1:grinder'
    log.append(entry(e, 'stock.sold', { sku: 'grinder', qty: 1, order: 's1-r1-a' }))
    log.append(
      entry(e, 'stock.sold', { sku: 'grinder', qty: 1, order: 's1-r2-b' }, { client: CLIENT_B }),
    )
    const s = log.state<StockState>(e)
    expect(stockOnHand(s, e)).toBe(-1)
    expect(log.kinds().filter((k) => k === 'stock.oversold')).toHaveLength(1)
    expect(s.recountDue).toBe(true)
    expect(s.oversold[0]?.order).toBe('s1-r2-b')
    // Receiving stock afterwards is not another oversale.
    log.append(entry(e, 'stock.received', { sku: 'grinder', qty: 3 }))
    expect(log.kinds().filter((k) => k === 'stock.oversold')).toHaveLength(1)
  })

  it('a count absorbs sales that happened before it but arrive after it', () => {
    const log = createLog()
    const e = 'stock/s1:mug'
    log.append(entry(e, 'stock.counted', { sku: 'mug', counted: 4 }, { at: 2000 }))
    log.append(entry(e, 'stock.sold', { sku: 'mug', qty: 1, order: 'o' }, { at: 1500 }))
    expect(stockOnHand(log.state<StockState>(e), e)).toBe(4)
    log.append(entry(e, 'stock.sold', { sku: 'mug', qty: 1, order: 'o2' }, { at: 2500 }))
    expect(stockOnHand(log.state<StockState>(e), e)).toBe(3)
  })
})

describe('price', () => {
  it('a sale at the old price after a head-office change records order.price_variance', () => {
    const log = createLog()
    const p = 'price/s1:espresso'
    log.append(entry(p, 'price.set', { sku: 'espresso', amount: 300, effectiveFrom: 2000 }))
    // Before the change took effect: no variance.
    log.append(
      entry(
        p,
        'price.charged',
        { sku: 'espresso', qty: 1, unitPrice: 280, order: 's1-r1-x' },
        { at: 1500 },
      ),
    )
    expect(log.kinds()).not.toContain('order.price_variance')
    // After it, at the stale price: the charged price stands, the variance is recorded.
    log.append(
      entry(
        p,
        'price.charged',
        { sku: 'espresso', qty: 2, unitPrice: 280, order: 's1-r1-y' },
        { at: 2500 },
      ),
    )
    const o = log.state<OrderState>('order/s1-r1-y')
    expect(o.varianceTotal).toBe(-40)
    expect(o.notes[0]?.kind).toBe('order.price_variance')
    // The next sale at the list price clears it and records nothing more.
    log.append(
      entry(
        p,
        'price.charged',
        { sku: 'espresso', qty: 1, unitPrice: 300, order: 's1-r1-w' },
        { at: 2600 },
      ),
    )
    expect(log.state<PriceState>(p).variance).toBeNull()
    expect(log.kinds().filter((k) => k === 'order.price_variance')).toHaveLength(1)
  })
})

describe('payment', () => {
  it('a card ending 0002 is declined after forwarding and leaves a balance due', () => {
    const log = createLog()
    const pay = 'payment/s1-r1-z-1'
    const d = log.append(
      entry(pay, 'card.charged', {
        order: 's1-r1-z',
        amount: 1250,
        last4: '0002',
        offline: true,
        contact: 'ana@example.com',
      }),
    )
    expect(d._tag).toBe('append')
    expect(log.state<PaymentState>(pay).status).toBe('declined')
    const o = log.state<OrderState>('order/s1-r1-z')
    expect(o.balanceDue).toBe(1250)
    expect(o.notes[0]?.data.contact).toBe('ana@example.com')
  })

  it('an approving card gets no correction; a refund beyond the capture is refused', () => {
    const log = createLog()
    const pay = 'payment/s1-r1-q-1'
    log.append(entry(pay, 'card.charged', { order: 's1-r1-q', amount: 500, last4: '4242' }))
    expect(log.kinds()).toEqual(['card.charged'])
    const ok = log.append(
      entry(pay, 'payment.refunded', { amount: 300, order: 's1-r1-q' }, { intent: 'request' }),
    )
    expect(ok._tag).toBe('append')
    const no = log.append(
      entry(pay, 'payment.refunded', { amount: 300, order: 's1-r1-q' }, { intent: 'request' }),
    )
    expect(no).toMatchObject({ _tag: 'refuse', code: 'invariant' })
  })
})

describe('drawer, gift card, day', () => {
  it('a short drawer gets drawer.over_short; a balanced one does not', () => {
    const log = createLog()
    const d = 'drawer/s1-r1'
    log.append(entry(d, 'shift.opened', { float: 10000 }))
    log.append(entry(d, 'cash.in', { amount: 500, order: 'o' }))
    log.append(entry(d, 'shift.closed', { counted: 10400 }))
    expect(log.kinds().filter((k) => k === 'drawer.over_short')).toHaveLength(1)
    expect(log.state<DrawerState>(d).closes[0]?.delta).toBe(-100)
    log.append(entry(d, 'shift.opened', { float: 10000 }))
    log.append(entry(d, 'shift.closed', { counted: 10000 }))
    expect(log.kinds().filter((k) => k === 'drawer.over_short')).toHaveLength(1)
  })

  it('gift card redemptions beyond the balance are refused, and must be requests', () => {
    const log = createLog()
    const g = 'giftcard/GC-1'
    log.append(entry(g, 'gc.issued', { amount: 1000 }))
    expect(
      log.append(entry(g, 'gc.redeemed', { amount: 800, order: 'o1' }, { intent: 'request' }))._tag,
    ).toBe('append')
    expect(
      log.append(entry(g, 'gc.redeemed', { amount: 800, order: 'o2' }, { intent: 'request' })),
    ).toMatchObject({
      _tag: 'refuse',
      code: 'invariant',
    })
    expect(log.append(entry(g, 'gc.redeemed', { amount: 100, order: 'o3' }))).toMatchObject({
      _tag: 'refuse',
      code: 'invalid',
    })
  })

  it('the day closes once; a late sale becomes a post-close adjustment', () => {
    const log = createLog()
    const day = 'day/s1:2025-01-01'
    log.append(entry(day, 'day.sale', { order: 'o1', register: 'r1', total: 500, tender: 'cash' }))
    expect(log.append(entry(day, 'day.closed', { by: 'r1' }, { intent: 'request' }))._tag).toBe(
      'append',
    )
    expect(log.append(entry(day, 'day.closed', { by: 'r2' }, { intent: 'request' }))).toMatchObject(
      { _tag: 'refuse' },
    )
    log.append(entry(day, 'day.sale', { order: 'o2', register: 'r2', total: 300, tender: 'card' }))
    const s = log.state<DayState>(day)
    expect(s.closedTotal).toBe(500)
    expect(s.adjustments.map((a) => a.data.amount)).toEqual([300])
  })

  it('money must be integer cents', () => {
    const log = createLog()
    const d = log.append(entry('drawer/s1-r1', 'cash.in', { amount: 1.5, order: 'o' }))
    expect(d).toMatchObject({ _tag: 'refuse', code: 'invalid' })
  })
})
