/**
 * The register: catalog grid with search (Enter adds the single match, as a barcode scanner
 * types the code and presses Enter), cart with a validated discount, cash (change due), card,
 * gift card and split tender (gift card first, then cash or card), and the receipt, printable
 * or emailed. A sale is one `appendMany` (see sale.ts): it is on the device when the receipt
 * shows, and reaches head office when the connection allows.
 *
 * Rules the cashier meets here: cash needs an open shift; the offline limits refuse only card
 * payments; gift cards need head office (it decides the balance).
 */
import { useEntity, useStatus } from '@ledgerline/react'
import { useMemo, useRef, useState } from 'react'
import { CATALOG, type CatalogItem, STORES } from './catalog.ts'
import { useCatalogText } from './crdt/catalog-text.ts'
import { registerName } from './inbox.ts'
import { DECISION_WAIT_MS } from './limits.ts'
import { formatCents, formatDeduction, parseCents } from './money.ts'
import { offlineRefusal } from './offline-limits.ts'
import { type PosStatus, waitForOutcome } from './pos-client.ts'
import { usePos } from './pos-context.ts'
import { type Receipt, receiptMailto, tenderLine } from './receipt.ts'
import { stageWords, useSaleStage } from './sale-stage.ts'
import {
  type CartLine,
  cartTotals,
  newOrderId,
  parseDiscount,
  receiptNumber,
  saleDrafts,
  type Tender,
} from './sale.ts'
import { type GiftCardState, listPriceAt, stockOnHand } from './schema.ts'
import { orderSyncState, pendingSales, productName, type StoreData } from './store-data.ts'
import { refusalWords } from './words.ts'

/** A gift card part already chosen, waiting for the rest of the sale's tender. */
interface GiftPart {
  readonly card: string
  readonly amount: number
}

type Step =
  | { readonly kind: 'idle' }
  | { readonly kind: 'giftcard' }
  | { readonly kind: 'cash' | 'card'; readonly gift: GiftPart | undefined }

const IDLE: Step = { kind: 'idle' }

export function RegisterView() {
  const { session, client, data, limits } = usePos()
  const status = useStatus<PosStatus>()
  const online = status?.online === true
  const [query, setQuery] = useState('')
  const [searchNote, setSearchNote] = useState<string | undefined>()
  const [cart, setCart] = useState<CartLine[]>([])
  const [discountText, setDiscountText] = useState('')
  const [step, setStep] = useState<Step>(IDLE)
  const [error, setError] = useState<string | undefined>()
  // Tenders refused for a shift or an offline limit: the refusal is worked out again on every
  // render, so its banner goes as soon as the shift opens or the connection returns.
  const [refused, setRefused] = useState<readonly Pick<Tender, 'method' | 'amount'>[] | undefined>()
  const [busy, setBusy] = useState(false)
  const [receipt, setReceipt] = useState<Receipt | undefined>()
  const cartRef = useRef<HTMLElement>(null)
  const discount = parseDiscount(discountText)
  const percent = discount._tag === 'ok' ? discount.percent : 0
  const totals = cartTotals(cart, percent)
  const shiftOpen = data.drawer.view.open
  const storeName = STORES.find((s) => s.id === session.store)?.name ?? session.store

  const shown = useMemo(() => {
    const q = query.trim().toLowerCase()
    return q === ''
      ? CATALOG
      : CATALOG.filter(
          (i) =>
            productName(data, i).toLowerCase().includes(q) ||
            i.sku.includes(q) ||
            i.barcode.startsWith(q) ||
            i.category.toLowerCase().includes(q),
        )
  }, [query, data])

  const add = (item: CatalogItem) => {
    setReceipt(undefined)
    setError(undefined)
    setRefused(undefined)
    setSearchNote(undefined)
    const unitPrice = unitPriceOf(data, item)
    const name = productName(data, item)
    setCart((lines) => {
      const i = lines.findIndex((l) => l.sku === item.sku)
      if (i < 0) return [...lines, { sku: item.sku, name, qty: 1, unitPrice }]
      return lines.map((l, j) => (j === i ? { ...l, qty: l.qty + 1 } : l))
    })
  }
  const setQty = (sku: string, qty: number) => {
    setError(undefined)
    setRefused(undefined)
    setCart((lines) =>
      qty <= 0
        ? lines.filter((l) => l.sku !== sku)
        : lines.map((l) => (l.sku === sku ? { ...l, qty } : l)),
    )
  }

  /** Enter: a barcode or sku typed in full, else the only item that matches. */
  const addFromSearch = () => {
    const q = query.trim().toLowerCase()
    if (q === '') return
    const exact = CATALOG.find((i) => i.barcode === q || i.sku === q)
    const pick = exact ?? (shown.length === 1 ? shown[0] : undefined)
    if (pick !== undefined) {
      add(pick)
      setQuery('')
      return
    }
    setSearchNote(
      shown.length === 0
        ? `No item has the code or name “${query.trim()}”.`
        : `${shown.length} items match “${query.trim()}”: tap one, or type more.`,
    )
  }

  /** Why `tenders` may not be taken now, in the cashier's words; `undefined` when they may. */
  const refusalOf = (tenders: readonly Pick<Tender, 'method' | 'amount'>[]) => {
    if (tenders.some((t) => t.method === 'cash') && !shiftOpen) {
      return 'Open a shift on the Drawer screen before taking cash: cash belongs to a shift.'
    }
    return offlineRefusal(limits, online, tenders, pendingSales(data).card, Date.now())
  }

  const start = (next: Step) => {
    setError(undefined)
    setRefused(undefined)
    if (next.kind === 'cash' || next.kind === 'card') {
      const tenders = [{ method: next.kind, amount: totals.total - (next.gift?.amount ?? 0) }]
      if (refusalOf(tenders) !== undefined) {
        setRefused(tenders)
        return
      }
    }
    setStep(next)
  }

  const complete = async (tenders: Tender[]) => {
    if (refusalOf(tenders) !== undefined) {
      setRefused(tenders)
      setStep(IDLE)
      return
    }
    setBusy(true)
    const orderId = newOrderId(session)
    let redeemed: GiftPart | undefined
    try {
      const gift = tenders.find((t) => t.method === 'giftcard')
      if (gift?.method === 'giftcard') {
        // Redemption is a request: head office decides it against the card's balance.
        const { id } = await client.append(
          `giftcard/${gift.card}`,
          'gc.redeemed',
          { amount: gift.amount, order: orderId },
          { intent: 'request' },
        )
        const outcome = await waitForOutcome(client, id, DECISION_WAIT_MS)
        if (outcome._tag === 'refused') {
          setError(refusalWords(outcome, `gift card ${gift.card}`))
          return
        }
        if (outcome._tag === 'outbox' || outcome._tag === 'unknown') {
          setError(
            'Head office has not answered for the gift card yet. Nothing was charged to it until it answers; take another tender or try again.',
          )
          return
        }
        redeemed = { card: gift.card, amount: gift.amount }
      }
      const entries = await client.appendMany(
        saleDrafts({
          session,
          orderId,
          date: data.date,
          lines: cart,
          totals,
          discountPercent: percent,
          tenders,
        }),
      )
      redeemed = undefined
      setReceipt({
        orderId,
        storeName,
        registerName: registerName(session.register),
        lines: cart,
        ...totals,
        discountPercent: percent,
        tenders,
        at: Date.now(),
        entryIds: entries.map((e) => e.id),
      })
      setCart([])
      setDiscountText('')
      setStep(IDLE)
      setError(undefined)
      setRefused(undefined)
    } catch (e) {
      setError(`The sale was not recorded: ${e instanceof Error ? e.message : String(e)}`)
    } finally {
      if (redeemed !== undefined) {
        // The card was charged but the sale could not be written: give the balance back.
        void client
          .append(`giftcard/${redeemed.card}`, 'gc.refunded', {
            amount: redeemed.amount,
            order: orderId,
          })
          .catch(() => {})
      }
      setBusy(false)
    }
  }

  const itemCount = cart.reduce((n, l) => n + l.qty, 0)
  const banner = error ?? (refused === undefined ? undefined : refusalOf(refused))
  const gift = step.kind === 'cash' || step.kind === 'card' ? step.gift : undefined
  const due = totals.total - (gift?.amount ?? 0)
  const canPay = cart.length > 0 && discount._tag === 'ok' && !busy

  return (
    <div className="register">
      <section className="catalog" aria-label="Catalog">
        <input
          className="search"
          type="search"
          enterKeyHint="enter"
          placeholder="Search or scan a barcode…"
          aria-label="Search items or scan a barcode"
          data-testid="catalog-search"
          value={query}
          onChange={(e) => {
            setQuery(e.target.value)
            setSearchNote(undefined)
          }}
          onKeyDown={(e) => {
            if (e.key === 'Enter') {
              e.preventDefault()
              addFromSearch()
            }
          }}
        />
        {searchNote === undefined ? null : (
          <p className="muted small-print" data-testid="search-note">
            {searchNote}
          </p>
        )}
        <div className="grid">
          {shown.map((item) => (
            <CatalogCard key={item.sku} item={item} onAdd={add} />
          ))}
          {shown.length === 0 ? <p className="muted">No item matches “{query}”.</p> : null}
        </div>
      </section>

      <section className="cart card" aria-label="Cart" ref={cartRef} data-testid="cart">
        {receipt !== undefined ? (
          <ReceiptView receipt={receipt} onNext={() => setReceipt(undefined)} />
        ) : (
          <>
            <h2>Current sale</h2>
            {cart.length === 0 ? (
              <p className="muted empty">Tap items, or scan them, to add them.</p>
            ) : null}
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
                inputMode="decimal"
                data-testid="discount-input"
                value={discountText}
                placeholder="0"
                aria-invalid={discount._tag === 'invalid'}
                onChange={(e) => {
                  setDiscountText(e.target.value)
                  setStep(IDLE)
                  setError(undefined)
                  setRefused(undefined)
                }}
              />
            </label>
            {discount._tag === 'invalid' ? (
              <p className="field-error" role="alert" data-testid="discount-error">
                {discount.reason}
              </p>
            ) : null}
            <dl className="totals">
              <dt>Subtotal</dt>
              <dd>{formatCents(totals.subtotal)}</dd>
              {totals.discount > 0 ? (
                <>
                  <dt>Discount {percent} %</dt>
                  <dd data-testid="cart-discount">{formatDeduction(totals.discount)}</dd>
                </>
              ) : null}
              <dt className="total">Total</dt>
              <dd className="total" data-testid="cart-total">
                {formatCents(totals.total)}
              </dd>
            </dl>
            {banner !== undefined ? (
              <p className="banner error" role="alert" data-testid="sale-error">
                {banner}
              </p>
            ) : null}
            {step.kind === 'idle' ? (
              <div className="tenders">
                <button
                  className="primary"
                  disabled={!canPay}
                  data-testid="pay-cash"
                  onClick={() => start({ kind: 'cash', gift: undefined })}
                >
                  Cash
                </button>
                <button
                  className="primary"
                  disabled={!canPay}
                  data-testid="pay-card"
                  onClick={() => start({ kind: 'card', gift: undefined })}
                >
                  Card
                </button>
                <button
                  disabled={!canPay || !online}
                  data-testid="pay-giftcard"
                  title={
                    online
                      ? 'Redeem a gift card; the rest can be paid in cash or by card'
                      : 'Gift cards need a connection: head office decides the balance'
                  }
                  onClick={() => start({ kind: 'giftcard' })}
                >
                  Gift card
                </button>
              </div>
            ) : null}
            {!online && step.kind === 'idle' && cart.length > 0 ? (
              <p className="muted small-print" data-testid="giftcard-offline">
                Gift cards need a connection: head office decides the balance.
              </p>
            ) : null}
            {!shiftOpen && step.kind === 'idle' && cart.length > 0 ? (
              <p className="muted small-print" data-testid="shift-closed-note">
                No shift is open: cards only until a shift is opened on the Drawer screen.
              </p>
            ) : null}
            {gift === undefined ? null : (
              <p className="banner warn" data-testid="split-note">
                Gift card {gift.card} pays {formatCents(gift.amount)}; {formatCents(due)} left to
                pay.
              </p>
            )}
            {step.kind === 'cash' ? (
              <CashDialog
                due={due}
                busy={busy}
                onPay={(tendered) =>
                  complete([...giftTenders(gift), { method: 'cash', amount: due, tendered }])
                }
                onCancel={() => setStep(IDLE)}
              />
            ) : null}
            {step.kind === 'card' ? (
              <CardDialog
                online={online}
                busy={busy}
                due={due}
                onPay={(card) =>
                  complete([...giftTenders(gift), { method: 'card', amount: due, ...card }])
                }
                onCancel={() => setStep(IDLE)}
              />
            ) : null}
            {step.kind === 'giftcard' ? (
              <GiftCardDialog
                total={totals.total}
                busy={busy}
                onPayAll={(card) => complete([{ method: 'giftcard', amount: totals.total, card }])}
                onRest={(part, rest) => start({ kind: rest, gift: part })}
                onCancel={() => setStep(IDLE)}
              />
            ) : null}
          </>
        )}
      </section>

      {receipt === undefined && cart.length > 0 ? (
        <div className="cart-bar" data-testid="cart-bar">
          <span>
            {itemCount} item{itemCount === 1 ? '' : 's'} ·{' '}
            <strong data-testid="cart-bar-total">{formatCents(totals.total)}</strong>
          </span>
          <button
            className="primary"
            data-testid="cart-bar-pay"
            onClick={() => cartRef.current?.scrollIntoView({ block: 'start' })}
          >
            Review and pay
          </button>
        </div>
      ) : null}
    </div>
  )
}

function giftTenders(gift: GiftPart | undefined): Tender[] {
  return gift === undefined ? [] : [{ method: 'giftcard', amount: gift.amount, card: gift.card }]
}

function unitPriceOf(data: StoreData, item: CatalogItem): number {
  const price = data.prices.get(item.sku)
  return price === undefined ? item.price : listPriceAt(price.view, item.sku, Date.now())
}

function CatalogCard(props: { item: CatalogItem; onAdd: (item: CatalogItem) => void }) {
  const { session, data } = usePos()
  const text = useCatalogText()
  const { item } = props
  const description = text.descriptionOf(item.sku)
  const stockEntity = `stock/${session.store}:${item.sku}`
  const stock = data.stock.get(item.sku)
  const onHand = stock === undefined ? item.opening : stockOnHand(stock.view, stockEntity)
  return (
    <button className="item" data-testid={`item-${item.sku}`} onClick={() => props.onAdd(item)}>
      <span className="swatch" style={{ background: item.color }} aria-hidden="true" />
      <span className="item-name" data-testid={`item-name-${item.sku}`}>
        {productName(data, item)}
      </span>
      {description === '' ? null : (
        <span className="item-description" data-testid={`item-description-${item.sku}`}>
          {description}
        </span>
      )}
      <span className="item-price" data-testid={`item-price-${item.sku}`}>
        {formatCents(unitPriceOf(data, item))}
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
  due: number
  busy: boolean
  onPay: (tendered: number) => Promise<void>
  onCancel: () => void
}) {
  const [text, setText] = useState('')
  const tendered = text === '' ? props.due : parseCents(text)
  const change = tendered === undefined ? undefined : tendered - props.due
  const ok = change !== undefined && change >= 0 && tendered !== undefined
  return (
    <form
      className="dialog"
      onSubmit={(e) => {
        e.preventDefault()
        if (ok) void props.onPay(tendered)
      }}
    >
      <h3>Cash · {formatCents(props.due)}</h3>
      <label>
        Cash given
        <input
          autoFocus
          inputMode="decimal"
          data-testid="cash-tendered"
          placeholder={formatCents(props.due)}
          value={text}
          onChange={(e) => setText(e.target.value)}
        />
      </label>
      <p className="change" data-testid="change-due">
        {change === undefined
          ? 'Type an amount, like 20 or 20.50'
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
  due: number
  onPay: (card: { last4: string; contact: string; offline: boolean }) => Promise<void>
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
        if (ok) {
          void props.onPay({
            last4: digits.slice(-4),
            contact: contact.trim(),
            offline: !props.online,
          })
        }
      }}
    >
      <h3>Card · {formatCents(props.due)}</h3>
      {props.online ? null : (
        <p className="banner warn" data-testid="card-offline-note">
          Offline: the card is stored and sent to head office when the connection returns. If it is
          declined then, the store is owed the amount, so take the customer’s contact.
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
      <p className="muted small-print">Demo card processor: numbers ending in 0002 are declined.</p>
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
  total: number
  busy: boolean
  onPayAll: (card: string) => Promise<void>
  onRest: (part: GiftPart, rest: 'cash' | 'card') => void
  onCancel: () => void
}) {
  const [code, setCode] = useState('')
  const card = code.trim().toUpperCase()
  const valid = /^[A-Z0-9-]{3,32}$/.test(card)
  // The balance head office last told this register; head office decides again on redeem.
  const gc = useEntity<GiftCardState>(`giftcard/${valid ? card : 'none'}`)
  const known = valid && gc !== undefined && gc.confirmed.issued > 0
  const balance = known ? gc.confirmed.balance : 0
  const covers = balance >= props.total
  return (
    <form
      className="dialog"
      onSubmit={(e) => {
        e.preventDefault()
        if (known && covers) void props.onPayAll(card)
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
      <p data-testid="giftcard-balance" className={valid && !known ? 'field-error' : 'muted'}>
        {!valid
          ? 'Type or scan the code on the card.'
          : gc === undefined
            ? 'Looking the card up…'
            : !known
              ? `Unknown gift card ${card}: check the code on the card.`
              : balance === 0
                ? `Gift card ${card} is empty.`
                : covers
                  ? `Balance ${formatCents(balance)}: it pays the whole sale.`
                  : `Balance ${formatCents(balance)}: it pays part; ${formatCents(props.total - balance)} left to pay in cash or by card.`}
      </p>
      <div className="row">
        <button type="button" className="ghost" onClick={props.onCancel}>
          Back
        </button>
        {known && covers ? (
          <button
            className="primary"
            type="submit"
            disabled={props.busy}
            data-testid="confirm-giftcard"
          >
            {props.busy ? 'Asking head office…' : `Redeem ${formatCents(props.total)}`}
          </button>
        ) : null}
        {known && !covers && balance > 0 ? (
          <>
            {(['cash', 'card'] as const).map((rest) => (
              <button
                key={rest}
                type="button"
                className="primary"
                data-testid={`giftcard-rest-${rest}`}
                onClick={() => props.onRest({ card, amount: balance }, rest)}
              >
                {rest === 'cash' ? 'Rest in cash' : 'Rest by card'}
              </button>
            ))}
          </>
        ) : null}
        {valid && !known ? (
          // Head office may know a card this register has not heard of yet: let it decide.
          <button
            type="button"
            disabled={props.busy}
            data-testid="confirm-giftcard"
            onClick={() => void props.onPayAll(card)}
          >
            Ask head office
          </button>
        ) : null}
      </div>
    </form>
  )
}

function ReceiptView(props: { receipt: Receipt; onNext: () => void }) {
  const { data } = usePos()
  const r = props.receipt
  const state = orderSyncState(data, r.orderId)
  const stage = useSaleStage(r.entryIds ?? [])
  const cash = r.tenders.find((t) => t.method === 'cash')
  return (
    <div className="receipt printable" data-testid="receipt">
      <p className="print-only">
        {r.storeName} · {r.registerName}
      </p>
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
            <dt>Subtotal</dt>
            <dd>{formatCents(r.subtotal)}</dd>
            <dt>Discount {r.discountPercent} %</dt>
            <dd>{formatDeduction(r.discount)}</dd>
          </>
        ) : null}
        <dt className="total">Total</dt>
        <dd className="total" data-testid="receipt-total">
          {formatCents(r.total)}
        </dd>
        {r.tenders.map((t) => {
          const [label, amount] = tenderLine(t)
          return (
            <div key={t.method} className="contents" data-testid={`receipt-tender-${t.method}`}>
              <dt>{label}</dt>
              <dd>{amount}</dd>
            </div>
          )
        })}
        {cash?.method === 'cash' ? (
          <>
            <dt>Cash given</dt>
            <dd>{formatCents(cash.tendered)}</dd>
            <dt>Change</dt>
            <dd data-testid="receipt-change">{formatCents(cash.tendered - cash.amount)}</dd>
          </>
        ) : null}
      </dl>
      <p
        className={`state-pill ${stage === 'device' ? 'pending' : stage === 'store' ? 'store' : state === 'corrected' ? 'corrected' : 'synced'} no-print`}
        data-testid="receipt-state"
        data-stage={stage}
      >
        {stage === 'head_office' && state === 'corrected'
          ? 'at head office, corrected'
          : stageWords(stage)}
      </p>
      <div className="row no-print">
        <button data-testid="receipt-print" onClick={() => window.print()}>
          Print
        </button>
        <a className="button" data-testid="receipt-email" href={receiptMailto(r)}>
          Email
        </a>
        <button className="primary" data-testid="new-sale" onClick={props.onNext}>
          New sale
        </button>
      </div>
    </div>
  )
}
