// Goal: each correction rule of the point-of-sale schema fires exactly when its conflict
// happens, once, against the right entity; requests are refused with a reason. Method: run the
// schema through core's `decide` (the same function the relay's server log uses) on small
// ledgers built entry by entry.
import { describe, expect, it } from 'vitest'
import {
  type DayState,
  type DrawerState,
  type OrderState,
  type PaymentState,
  type PriceState,
  type ProductState,
  type StockState,
  stockOnHand,
} from './schema.ts'
import { CLIENT_B, createLog, entry } from './test-log.ts'

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

describe('issue 19: the day reconciles, shifts are disciplined, names are one value', () => {
  const DAY = 'day/s1:2025-01-02'

  it('a card declined after forwarding is recorded on its day, against the register', () => {
    // Goal: the day ledger knows a card sale brought no money in, so the report never counts
    // it as card takings. Method: forward a card ending 0002 that names its day; the relay's
    // decision must add a `day.declined` correction to that day, next to the sale.
    const log = createLog()
    log.append(
      entry(DAY, 'day.sale', {
        order: 's1-r1-d',
        register: 'r1',
        total: 900,
        tender: 'card',
        tenders: [{ method: 'card', amount: 900 }],
      }),
    )
    log.append(
      entry('payment/s1-r1-d-1', 'card.charged', {
        order: 's1-r1-d',
        amount: 900,
        last4: '0002',
        offline: true,
        contact: 'ana@example.com',
        day: 's1:2025-01-02',
        register: 'r1',
      }),
    )
    expect(log.kinds()).toContain('day.declined')
    const day = log.state<DayState>(DAY)
    expect(day.registers.r1?.declined.card).toBe(900)
    expect(day.registers.r1?.gross.card).toBe(900)
  })

  it('a collection and a write-off are entries of the day they happened on', () => {
    // Goal: cash collected for a declined card and amounts written off reach the day report.
    // Method: append both kinds to a day ledger; both must be accepted and counted.
    const log = createLog()
    const collected = log.append(
      entry(DAY, 'day.collected', {
        order: 's1-r1-d',
        register: 'r2',
        amount: 900,
        tender: 'cash',
        payment: 's1-r1-d-c1',
      }),
    )
    expect(collected._tag).toBe('append')
    const written = log.append(
      entry(DAY, 'day.written_off', { order: 's1-r1-e', register: 'r1', amount: 450 }),
    )
    expect(written._tag).toBe('append')
    const day = log.state<DayState>(DAY)
    expect(day.registers.r2?.collected.cash).toBe(900)
    expect(day.registers.r1?.writtenOff).toBe(450)
  })

  it('closing a shift that was never opened changes nothing and records no over/short', () => {
    // Goal: a drawer cannot record a fake over/short or skip a shift number. Method: close a
    // fresh drawer; the close is kept (a fact) but answered by a refusal correction, and the
    // shift number stays 1.
    const log = createLog()
    const d = 'drawer/s1-r3'
    log.append(entry(d, 'shift.closed', { counted: 5000 }))
    expect(log.kinds()).not.toContain('drawer.over_short')
    expect(log.kinds()).toContain('drawer.shift_refused')
    const s = log.state<DrawerState>(d)
    expect(s.shift).toBe(1)
    expect(s.closes).toHaveLength(0)
  })

  it('a shift closes once: a second close of the same shift is refused', () => {
    const log = createLog()
    const d = 'drawer/s1-r2'
    log.append(entry(d, 'shift.opened', { float: 10000, date: '2025-01-02' }))
    log.append(entry(d, 'shift.closed', { counted: 10000, shift: 1 }))
    log.append(entry(d, 'shift.closed', { counted: 9000, shift: 1 }))
    const s = log.state<DrawerState>(d)
    expect(s.closes).toHaveLength(1)
    expect(s.shift).toBe(2)
    expect(log.kinds().filter((k) => k === 'drawer.over_short')).toHaveLength(0)
    expect(log.kinds().filter((k) => k === 'drawer.shift_refused')).toHaveLength(1)
  })

  it('cash taken with no open shift stands but is flagged', () => {
    const log = createLog()
    const d = 'drawer/s1-r1'
    log.append(entry(d, 'cash.in', { amount: 500, order: 'o' }))
    expect(log.kinds()).toContain('drawer.cash_outside_shift')
  })

  it('an unknown gift card is refused as unknown, not as a short balance', () => {
    // Goal: the cashier hears the real reason. Method: redeem a code never issued, then one
    // beyond its balance; each refusal names exactly its own rule.
    const log = createLog()
    const unknown = log.append(
      entry('giftcard/GC-NONE', 'gc.redeemed', { amount: 100, order: 'o' }, { intent: 'request' }),
    )
    expect(unknown).toMatchObject({ _tag: 'refuse', code: 'invariant' })
    expect(unknown._tag === 'refuse' ? unknown.reason : '').toMatch(/^cardIssued:/)
    log.append(entry('giftcard/GC-5', 'gc.issued', { amount: 500 }))
    const short = log.append(
      entry('giftcard/GC-5', 'gc.redeemed', { amount: 600, order: 'o' }, { intent: 'request' }),
    )
    expect(short._tag === 'refuse' ? short.reason : '').toMatch(/^balanceNonNegative:/)
  })

  it('two renames made at once keep both names until head office picks one', () => {
    // Goal: a product name is one value; two offline renames never merge into one string.
    // Method: two renames based on the same (empty) history arrive; the second opens a
    // conflict with both candidates; head office's choice closes it.
    const log = createLog()
    const p = 'product/s1:croissant'
    const first = entry(p, 'product.renamed', {
      sku: 'croissant',
      name: 'Almond croissant',
      basedOn: '',
      by: 'hq',
    })
    log.append(first)
    log.append(
      entry(
        p,
        'product.renamed',
        { sku: 'croissant', name: 'Butter croissant', basedOn: '', by: 'hq' },
        { client: CLIENT_B },
      ),
    )
    expect(log.kinds().filter((k) => k === 'product.name_conflict')).toHaveLength(1)
    const open = log.state<ProductState>(p)
    expect(open.candidates.map((c) => c.name)).toEqual(['Almond croissant', 'Butter croissant'])
    expect(open.name).toBe('Almond croissant')
    log.append(
      entry(p, 'product.name_chosen', {
        sku: 'croissant',
        name: 'Butter croissant',
        chosen: first.id,
        by: 'hq',
      }),
    )
    const done = log.state<ProductState>(p)
    expect(done.name).toBe('Butter croissant')
    expect(done.candidates).toEqual([])
  })
})

describe('issue 19: edges', () => {
  it('renames: the same name twice is no conflict; a rename after the pick is plain', () => {
    const log = createLog()
    const p = 'product/s1:mug'
    const first = entry(p, 'product.renamed', { sku: 'mug', name: 'Mug', basedOn: '', by: 'hq' })
    log.append(first)
    log.append(
      entry(
        p,
        'product.renamed',
        { sku: 'mug', name: 'Mug', basedOn: '', by: 'hq' },
        { client: CLIENT_B },
      ),
    )
    expect(log.kinds()).not.toContain('product.name_conflict')
    log.append(
      entry(p, 'product.renamed', { sku: 'mug', name: 'Big mug', basedOn: first.id, by: 'hq' }),
    )
    expect(log.state<ProductState>(p).name).toBe('Big mug')
    // A third name while two are open joins them; the pick settles all.
    log.append(
      entry(
        p,
        'product.renamed',
        { sku: 'mug', name: 'Tall mug', basedOn: first.id, by: 'r1' },
        { client: CLIENT_B },
      ),
    )
    log.append(
      entry(
        p,
        'product.renamed',
        { sku: 'mug', name: 'Blue mug', basedOn: first.id, by: 'r2' },
        { client: CLIENT_B },
      ),
    )
    expect(log.state<ProductState>(p).candidates.map((c) => c.name)).toEqual([
      'Big mug',
      'Tall mug',
      'Blue mug',
    ])
    expect(log.kinds().filter((k) => k === 'product.name_conflict')).toHaveLength(2)
    const pick = entry(p, 'product.name_chosen', {
      sku: 'mug',
      name: 'Tall mug',
      chosen: '',
      by: 'hq',
    })
    log.append(pick)
    log.append(
      entry(p, 'product.renamed', {
        sku: 'mug',
        name: 'Tall blue mug',
        basedOn: pick.id,
        by: 'hq',
      }),
    )
    expect(log.state<ProductState>(p)).toMatchObject({ name: 'Tall blue mug', candidates: [] })
  })

  it('after the close: a collection is an adjustment; a decline is listed, not adjusted', () => {
    const log = createLog()
    const d = 'day/s1:2025-01-03'
    log.append(entry(d, 'day.closed', { by: 'r1' }, { intent: 'request' }))
    log.append(
      entry(d, 'day.collected', {
        order: 'o1',
        register: 'r2',
        amount: 700,
        tender: 'cash',
        payment: 'o1-c',
      }),
    )
    log.append(
      entry('payment/s1-r1-z-1', 'card.charged', {
        order: 's1-r1-z',
        amount: 400,
        last4: '0002',
        day: 's1:2025-01-03',
        register: 'r1',
      }),
    )
    const s = log.state<DayState>(d)
    expect(s.adjustments.map((a) => a.data.amount)).toEqual([700])
    expect(s.afterClose.map((m) => [m.kind, m.amount])).toEqual([
      ['collection', 700],
      ['decline', -400],
    ])
    expect(s.registers.r1?.declined.card).toBe(400)
  })

  it('refuses a sale whose tenders do not add up, and a discount with three decimals', () => {
    const log = createLog()
    const sale = log.append(
      entry('day/s1:2025-01-04', 'day.sale', {
        order: 'o',
        register: 'r1',
        total: 1000,
        tender: 'split',
        tenders: [
          { method: 'giftcard', amount: 500 },
          { method: 'cash', amount: 400 },
        ],
      }),
    )
    expect(sale).toMatchObject({ _tag: 'refuse', code: 'invalid', reason: /add up/ })
    const discount = log.append(
      entry('order/o', 'order.completed', {
        store: 's1',
        register: 'r1',
        lines: [],
        subtotal: 1000,
        discount: 125,
        discountPercent: 12.125,
        total: 875,
        tender: 'cash',
      }),
    )
    expect(discount).toMatchObject({ _tag: 'refuse', code: 'invalid', reason: /percentage/ })
  })

  it('a card charged with a malformed day is refused before any correction could fail', () => {
    const log = createLog()
    const d = log.append(
      entry('payment/o-1', 'card.charged', {
        order: 'o',
        amount: 100,
        last4: '0002',
        day: 'not a day',
      }),
    )
    expect(d).toMatchObject({ _tag: 'refuse', code: 'invalid' })
  })
})
