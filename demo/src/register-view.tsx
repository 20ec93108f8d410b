/**
 * The register: catalog grid with search, cart with discount, cash (change due), card and gift
 * card payment, and the receipt. A sale is one `appendMany` (see sale.ts): it is on the device
 * when the receipt shows, and reaches head office when the connection allows.
 */
import { useEntity, useStatus } from '@ledgerline/react'
import { useMemo, useState } from 'react'
import { CATALOG, type CatalogItem } from './catalog.ts'
import { useCatalogText } from './crdt/catalog-text.ts'
import { offlineRefusal } from './limits.ts'
import { formatCents, parseCents } from './money.ts'
import { type PosStatus, waitForOutcome } from './pos-client.ts'
import { usePos } from './pos-context.ts'
import {
  type CartLine,
  cartTotals,
  newOrderId,
  receiptNumber,
  saleDrafts,
  type Tender,
} from './sale.ts'
import { listPriceAt, type PriceState, stockOnHand, type StockState } from './schema.ts'
import { orderSyncState, pendingSales } from './store-data.ts'

interface Receipt {
  readonly orderId: string
  readonly lines: readonly CartLine[]
  readonly subtotal: number
  readonly discount: number
  readonly total: number
  readonly tender: Tender
  readonly at: number
}

type Dialog = 'cash' | 'card' | 'giftcard' | undefined

export function RegisterView() {
  const { session, client, data, limits } = usePos()
  const status = useStatus<PosStatus>()
  const online = status?.online === true
  const [query, setQuery] = useState('')
  const [cart, setCart] = useState<CartLine[]>([])
  const [discount, setDiscount] = useState(0)
  const [dialog, setDialog] = useState<Dialog>()
  const [error, setError] = useState<string | undefined>()
  const [busy, setBusy] = useState(false)
  const [receipt, setReceipt] = useState<Receipt | undefined>()
  const totals = cartTotals(cart, discount)
  const text = useCatalogText()

  const shown = useMemo(() => {
    const q = query.trim().toLowerCase()
    return q === ''
      ? CATALOG
      : CATALOG.filter(
          (i) =>
            text.nameOf(i).toLowerCase().includes(q) ||
            i.sku.includes(q) ||
            i.category.toLowerCase().includes(q),
        )
  }, [query, text])

  const add = (item: CatalogItem, unitPrice: number) => {
    setReceipt(undefined)
    setError(undefined)
    setCart((lines) => {
      const i = lines.findIndex((l) => l.sku === item.sku)
      if (i < 0) return [...lines, { sku: item.sku, name: text.nameOf(item), qty: 1, unitPrice }]
      return lines.map((l, j) => (j === i ? { ...l, qty: l.qty + 1 } : l))
    })
  }
  const setQty = (sku: string, qty: number) =>
    setCart((lines) =>
      qty <= 0
        ? lines.filter((l) => l.sku !== sku)
        : lines.map((l) => (l.sku === sku ? { ...l, qty } : l)),
    )

  const startPayment = (d: Exclude<Dialog, undefined>) => {
    const refusal = offlineRefusal(limits, online, totals.total, pendingSales(data), Date.now())
    if (refusal !== undefined) {
      setError(refusal)
      return
    }
    setError(undefined)
    setDialog(d)
  }

  const complete = async (tender: Tender) => {
    const refusal = offlineRefusal(limits, online, totals.total, pendingSales(data), Date.now())
    if (refusal !== undefined) {
      setError(refusal)
      setDialog(undefined)
      return
    }
    setBusy(true)
    try {
      const orderId = newOrderId(session)
      if (tender.method === 'giftcard') {
        // Redemption is a request: head office decides it against the card's balance.
        const { id } = await client.append(
          `giftcard/${tender.card}`,
          'gc.redeemed',
          { amount: totals.total, order: orderId },
          { intent: 'request' },
        )
        const outcome = await waitForOutcome(client, id)
        if (outcome._tag === 'refused') {
          setError(`Gift card refused: ${outcome.reason}`)
          return
        }
        if (outcome._tag === 'outbox') {
          setError(
            'Head office has not answered the gift card redemption yet; it stays pending. Take another tender.',
          )
          return
        }
      }
      await client.appendMany(
        saleDrafts({ session, orderId, date: data.date, lines: cart, totals, tender }),
      )
      setReceipt({ orderId, lines: cart, ...totals, tender, at: Date.now() })
      setCart([])
      setDiscount(0)
      setDialog(undefined)
      setError(undefined)
    } catch (e) {
      setError(`The sale was not recorded: ${e instanceof Error ? e.message : String(e)}`)
    } finally {
      setBusy(false)
    }
  }

  return (
    <div className="register">
      <section className="catalog" aria-label="Catalog">
        <input
          className="search"
          type="search"
          placeholder="Search items…"
          data-testid="catalog-search"
          value={query}
          onChange={(e) => setQuery(e.target.value)}
        />
        <div className="grid">
          {shown.map((item) => (
            <CatalogCard key={item.sku} item={item} onAdd={add} />
          ))}
          {shown.length === 0 ? <p className="muted">No item matches “{query}”.</p> : null}
        </div>
      </section>

      <section className="cart card" aria-label="Cart">
        {receipt !== undefined ? (
          <ReceiptView receipt={receipt} onNext={() => setReceipt(undefined)} />
        ) : (
          <>
            <h2>Current sale</h2>
            {cart.length === 0 ? <p className="muted empty">Tap items to add them.</p> : null}
            <ul className="lines">
              {cart.map((l) => (
                <li key={l.sku} data-testid={`cart-line-${l.sku}`}>
                  <span className="line-name">{l.name}</span>
                  <span className="qty">
                    <button
                      className="small"
                      aria-label={`One less ${l.name}`}
                      onClick={() => setQty(l.sku, l.qty - 1)}
                    >
                      −
                    </button>
                    <span data-testid={`cart-qty-${l.sku}`}>{l.qty}</span>
                    <button
                      className="small"
                      aria-label={`One more ${l.name}`}
                      onClick={() => setQty(l.sku, l.qty + 1)}
                    >
                      +
                    </button>
                  </span>
                  <span className="amount">{formatCents(l.qty * l.unitPrice)}</span>
                </li>
              ))}
            </ul>
            <label className="discount">
              Discount %
              <input
                type="number"
                min={0}
                max={100}
                data-testid="discount-input"
                value={discount === 0 ? '' : discount}
                placeholder="0"
                onChange={(e) => setDiscount(Number(e.target.value) || 0)}
              />
            </label>
            <dl className="totals">
              <dt>Subtotal</dt>
              <dd>{formatCents(totals.subtotal)}</dd>
              {totals.discount > 0 ? (
                <>
                  <dt>Discount</dt>
                  <dd>−{formatCents(totals.discount)}</dd>
                </>
              ) : null}
              <dt className="total">Total</dt>
              <dd className="total" data-testid="cart-total">
                {formatCents(totals.total)}
              </dd>
            </dl>
            {error !== undefined ? (
              <p className="banner error" role="alert" data-testid="sale-error">
                {error}
              </p>
            ) : null}
            {dialog === undefined ? (
              <div className="tenders">
                <button
                  className="primary"
                  disabled={cart.length === 0}
                  data-testid="pay-cash"
                  onClick={() => startPayment('cash')}
                >
                  Cash
                </button>
                <button
                  className="primary"
                  disabled={cart.length === 0}
                  data-testid="pay-card"
                  onClick={() => startPayment('card')}
                >
                  Card
                </button>
                <button
                  disabled={cart.length === 0 || !online}
                  data-testid="pay-giftcard"
                  title={
                    online
                      ? 'Redeem a gift card'
                      : 'Gift cards need a connection: head office decides the balance'
                  }
                  onClick={() => startPayment('giftcard')}
                >
                  Gift card
                </button>
              </div>
            ) : null}
            {!online && dialog === undefined && cart.length > 0 ? (
              <p className="muted small-print" data-testid="giftcard-offline">
                Gift cards need a connection: head office decides the balance.
              </p>
            ) : null}
            {dialog === 'cash' ? (
              <CashDialog
                total={totals.total}
                busy={busy}
                onPay={complete}
                onCancel={() => setDialog(undefined)}
              />
            ) : null}
            {dialog === 'card' ? (
              <CardDialog
                online={online}
                busy={busy}
                onPay={complete}
                onCancel={() => setDialog(undefined)}
              />
            ) : null}
            {dialog === 'giftcard' ? (
              <GiftCardDialog busy={busy} onPay={complete} onCancel={() => setDialog(undefined)} />
            ) : null}
          </>
        )}
      </section>
    </div>
  )
}

function CatalogCard(props: {
  item: CatalogItem
  onAdd: (item: CatalogItem, unitPrice: number) => void
}) {
  const { session } = usePos()
  const text = useCatalogText()
  const { item } = props
  const description = text.descriptionOf(item.sku)
  const stockEntity = `stock/${session.store}:${item.sku}`
  const price = useEntity<PriceState>(`price/${session.store}:${item.sku}`)
  const stock = useEntity<StockState>(stockEntity)
  const unitPrice = price === undefined ? item.price : listPriceAt(price.view, item.sku, Date.now())
  const onHand = stock === undefined ? item.opening : stockOnHand(stock.view, stockEntity)
  return (
    <button
      className="item"
      data-testid={`item-${item.sku}`}
      onClick={() => props.onAdd(item, unitPrice)}
    >
      <span className="swatch" style={{ background: item.color }} aria-hidden="true" />
      <span className="item-name" data-testid={`item-name-${item.sku}`}>
        {text.nameOf(item)}
      </span>
      {description === '' ? null : (
        <span className="item-description" data-testid={`item-description-${item.sku}`}>
          {description}
        </span>
      )}
      <span className="item-price" data-testid={`item-price-${item.sku}`}>
        {formatCents(unitPrice)}
      </span>
      <span
        className={onHand <= 0 ? 'item-stock out' : onHand <= 3 ? 'item-stock low' : 'item-stock'}
        data-testid={`item-stock-${item.sku}`}
      >
        {onHand} left
      </span>
    </button>
  )
}

function CashDialog(props: {
  total: number
  busy: boolean
  onPay: (t: Tender) => Promise<void>
  onCancel: () => void
}) {
  const [text, setText] = useState('')
  const tendered = text === '' ? props.total : parseCents(text)
  const change = tendered === undefined ? undefined : tendered - props.total
  const ok = change !== undefined && change >= 0 && tendered !== undefined
  return (
    <form
      className="dialog"
      onSubmit={(e) => {
        e.preventDefault()
        if (ok) void props.onPay({ method: 'cash', tendered })
      }}
    >
      <h3>Cash</h3>
      <label>
        Tendered
        <input
          autoFocus
          inputMode="decimal"
          data-testid="cash-tendered"
          placeholder={formatCents(props.total)}
          value={text}
          onChange={(e) => setText(e.target.value)}
        />
      </label>
      <p className="change" data-testid="change-due">
        {change === undefined
          ? 'Enter an amount'
          : change < 0
            ? `${formatCents(-change)} short`
            : `Change due ${formatCents(change)}`}
      </p>
      <div className="row">
        <button type="button" className="ghost" onClick={props.onCancel}>
          Back
        </button>
        <button
          className="primary"
          type="submit"
          disabled={!ok || props.busy}
          data-testid="confirm-cash"
        >
          Take cash
        </button>
      </div>
    </form>
  )
}

function CardDialog(props: {
  online: boolean
  busy: boolean
  onPay: (t: Tender) => Promise<void>
  onCancel: () => void
}) {
  const [number, setNumber] = useState('')
  const [contact, setContact] = useState('')
  const digits = number.replace(/\D/g, '')
  const ok = digits.length >= 12 && digits.length <= 19 && (props.online || contact.trim() !== '')
  return (
    <form
      className="dialog"
      onSubmit={(e) => {
        e.preventDefault()
        if (ok)
          void props.onPay({
            method: 'card',
            last4: digits.slice(-4),
            contact: contact.trim(),
            offline: !props.online,
          })
      }}
    >
      <h3>Card</h3>
      {props.online ? null : (
        <p className="banner warn" data-testid="card-offline-note">
          Offline: the card is stored and forwarded when the connection returns. If it is declined
          then, the store is owed the amount, so take the customer’s contact.
        </p>
      )}
      <label>
        Card number
        <input
          autoFocus
          inputMode="numeric"
          autoComplete="off"
          data-testid="card-number"
          placeholder="4242 4242 4242 4242"
          value={number}
          onChange={(e) => setNumber(e.target.value)}
        />
      </label>
      <label>
        Customer contact {props.online ? '(optional)' : '(needed offline)'}
        <input
          data-testid="card-contact"
          placeholder="email or phone"
          value={contact}
          onChange={(e) => setContact(e.target.value)}
        />
      </label>
      <p className="muted small-print">Demo processor: numbers ending in 0002 are declined.</p>
      <div className="row">
        <button type="button" className="ghost" onClick={props.onCancel}>
          Back
        </button>
        <button
          className="primary"
          type="submit"
          disabled={!ok || props.busy}
          data-testid="confirm-card"
        >
          {props.online ? 'Charge card' : 'Store card offline'}
        </button>
      </div>
    </form>
  )
}

function GiftCardDialog(props: {
  busy: boolean
  onPay: (t: Tender) => Promise<void>
  onCancel: () => void
}) {
  const [code, setCode] = useState('')
  const card = code.trim().toUpperCase()
  const ok = /^[A-Z0-9-]{3,32}$/.test(card)
  return (
    <form
      className="dialog"
      onSubmit={(e) => {
        e.preventDefault()
        if (ok) void props.onPay({ method: 'giftcard', card })
      }}
    >
      <h3>Gift card</h3>
      <label>
        Card code
        <input
          autoFocus
          data-testid="giftcard-code"
          placeholder="GC-1000"
          value={code}
          onChange={(e) => setCode(e.target.value)}
        />
      </label>
      <div className="row">
        <button type="button" className="ghost" onClick={props.onCancel}>
          Back
        </button>
        <button
          className="primary"
          type="submit"
          disabled={!ok || props.busy}
          data-testid="confirm-giftcard"
        >
          {props.busy ? 'Asking head office…' : 'Redeem'}
        </button>
      </div>
    </form>
  )
}

function ReceiptView(props: { receipt: Receipt; onNext: () => void }) {
  const { data } = usePos()
  const r = props.receipt
  const state = orderSyncState(data, r.orderId)
  return (
    <div className="receipt" data-testid="receipt">
      <h2>
        Receipt <span data-testid="receipt-order">{receiptNumber(r.orderId)}</span>
      </h2>
      <p className="muted">{new Date(r.at).toLocaleString()}</p>
      <ul className="lines">
        {r.lines.map((l) => (
          <li key={l.sku}>
            <span className="line-name">
              {l.qty} × {l.name}
            </span>
            <span className="amount">{formatCents(l.qty * l.unitPrice)}</span>
          </li>
        ))}
      </ul>
      <dl className="totals">
        {r.discount > 0 ? (
          <>
            <dt>Discount</dt>
            <dd>−{formatCents(r.discount)}</dd>
          </>
        ) : null}
        <dt className="total">Total</dt>
        <dd className="total" data-testid="receipt-total">
          {formatCents(r.total)}
        </dd>
        {r.tender.method === 'cash' ? (
          <>
            <dt>Cash</dt>
            <dd>{formatCents(r.tender.tendered)}</dd>
            <dt>Change</dt>
            <dd data-testid="receipt-change">{formatCents(r.tender.tendered - r.total)}</dd>
          </>
        ) : r.tender.method === 'card' ? (
          <>
            <dt>Card</dt>
            <dd>•••• {r.tender.last4}</dd>
          </>
        ) : (
          <>
            <dt>Gift card</dt>
            <dd>{r.tender.card}</dd>
          </>
        )}
      </dl>
      <p className={`state-pill ${state}`} data-testid="receipt-state">
        {state === 'pending' ? 'on this register, not yet at head office' : state}
      </p>
      <button className="primary" data-testid="new-sale" onClick={props.onNext}>
        New sale
      </button>
    </div>
  )
}
