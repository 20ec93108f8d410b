/**
 * The register's other screens: orders (with refunds and voids), stock, the conflicts inbox,
 * the cash drawer's shifts, the day report and the offline card limits. Every action appends
 * entries; nothing edits one.
 */
import { useStatus } from '@ledgerline/react'
import { useEffect, useState, useSyncExternalStore } from 'react'
import { CATALOG, REGISTERS, STORES } from './catalog.ts'
import { dayReport, type DayReport, type DrawerRow } from './day-report.ts'
import { inboxItems, type InboxItem, registerName } from './inbox.ts'
import { DECISION_WAIT_MS } from './limits.ts'
import { formatCents, formatDeduction, parseCents } from './money.ts'
import { type PosEntity, type PosStatus, waitForOutcome } from './pos-client.ts'
import { usePos } from './pos-context.ts'
import { PickName } from './product-names.tsx'
import {
  clearRefundProgress,
  onRefundProgress,
  type RefundProgress,
  refundProgress,
  runRefund,
  unfinishedRefundParts,
} from './refund-runner.ts'
import {
  collectDrafts,
  dayEntity,
  drawerEntity,
  parseRefundReason,
  receiptNumber,
  refundableAmount,
  refundParts,
  type RefundPart,
  writeOffDrafts,
} from './sale.ts'
import { drawerExpected, type OrderState, type PaymentState, stockOnHand } from './schema.ts'
import {
  orderCorrections,
  orderPayments,
  orderSyncState,
  pendingSales,
  productName,
} from './store-data.ts'
import { refusalWords } from './words.ts'

// ---------------------------------------------------------------------------------------------
// Orders

const SYNC_WORDS = {
  pending: 'not yet at head office',
  synced: 'at head office',
  corrected: 'corrected by head office',
} as const

export function OrdersView() {
  const { data } = usePos()
  const orders = [...data.orders.keys()]
  return (
    <section className="card">
      <h2>Sales today</h2>
      {orders.length === 0 ? <p className="muted">No sales yet today.</p> : null}
      <div className="table-scroll" data-testid="orders-scroll">
        <table className="table" data-testid="orders-table">
          <thead>
            <tr>
              <th>Receipt</th>
              <th>Register</th>
              <th>Time</th>
              <th>Items</th>
              <th className="num">Total</th>
              <th>Paid with</th>
              <th>State</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {orders.map((id) => (
              <OrderRow key={id} orderId={id} />
            ))}
          </tbody>
        </table>
      </div>
    </section>
  )
}

function OrderRow(props: { orderId: string }) {
  const { data, client, session } = usePos()
  const status = useStatus<PosStatus>()
  const online = status?.online === true
  const [dialog, setDialog] = useState<'refund' | 'void' | undefined>()
  const progress = useSyncExternalStore(onRefundProgress, () => refundProgress(props.orderId))
  const id = props.orderId
  const snap = data.orders.get(id)
  const pays = data.payments.get(id) ?? []
  if (snap === undefined) return null
  const o = snap.view
  const state = orderSyncState(data, id)
  const corrections = orderCorrections(data, id)
  const payments = orderPayments(data, id)
  const refundable = refundableAmount(o, payments)
  const declined = pays.some((p) => p.view.status === 'declined')
  const register = session.register !== 'hq'
  const deciding = progress?._tag === 'deciding'
  const unfinished = deciding
    ? []
    : unfinishedRefundParts(
        o,
        pays.map((p, i) => ({ id: `${id}-${i + 1}`, state: p.confirmed })),
      )
  const offlineTitle = online ? '' : 'Refunds need head office: reconnect first'

  return (
    <>
      <tr data-testid={`order-row-${id}`} data-order={id} data-state={state}>
        <td className="mono">{receiptNumber(id)}</td>
        <td>{registerName(o.register)}</td>
        <td>{o.occurredAt === 0 ? '' : new Date(o.occurredAt).toLocaleTimeString()}</td>
        <td>{o.lines.map((l) => `${l.qty}× ${l.name}`).join(', ')}</td>
        <td className="num">{formatCents(o.total)}</td>
        <td data-testid={`order-payment-${id}`}>{paymentLabel(pays)}</td>
        <td>
          <span className={`state-pill ${state}`} data-testid={`order-state-${id}`}>
            {SYNC_WORDS[state]}
          </span>
          {o.status === 'voided' ? <span className="state-pill corrected">voided</span> : null}
          {o.refunded > 0 && o.status !== 'voided' ? (
            <span className="state-pill corrected" data-testid={`order-refunded-${id}`}>
              {formatCents(o.refunded)} refunded
            </span>
          ) : null}
          {o.balanceDue > 0 ? (
            <span className="state-pill due" data-testid={`order-balance-${id}`}>
              {formatCents(o.balanceDue)} due
            </span>
          ) : null}
          {corrections.length > 0 ? (
            <div className="muted small-print">{corrections.join(', ')}</div>
          ) : null}
        </td>
        <td className="actions">
          {register && refundable > 0 && dialog === undefined && !deciding ? (
            <>
              <button
                className="small"
                disabled={!online}
                title={offlineTitle}
                data-testid={`refund-${id}`}
                onClick={() => setDialog('refund')}
              >
                Refund…
              </button>
              {o.refunded === 0 ? (
                <button
                  className="small"
                  disabled={!online}
                  title={offlineTitle}
                  data-testid={`void-${id}`}
                  onClick={() => setDialog('void')}
                >
                  Void…
                </button>
              ) : null}
            </>
          ) : null}
          {declined ? (
            <span className="muted small-print" data-testid={`order-declined-${id}`}>
              Card declined: no refund; settle the balance in the Inbox.
            </span>
          ) : null}
          {register && unfinished.length > 0 ? (
            <button
              className="small primary"
              data-testid={`finish-refund-${id}`}
              title="Head office accepted a refund this register did not finish recording"
              onClick={() =>
                void runRefund(client, session, {
                  orderId: id,
                  saleEntry: o.saleEntry,
                  date: data.date,
                  parts: unfinished,
                  lines: [],
                  reason: 'refund accepted by head office, finished after a reconnect',
                  void: false,
                })
              }
            >
              Finish refund of {formatCents(unfinished.reduce((n, p) => n + p.amount, 0))}
            </button>
          ) : null}
          <RefundResult orderId={id} progress={progress} />
        </td>
      </tr>
      {dialog === undefined ? null : (
        <tr className="dialog-row">
          <td colSpan={8}>
            <RefundDialog
              orderId={id}
              order={o}
              mode={dialog}
              refundable={refundable}
              onDone={() => setDialog(undefined)}
            />
          </td>
        </tr>
      )}
    </>
  )
}

function RefundResult(props: { orderId: string; progress: RefundProgress | undefined }) {
  const p = props.progress
  if (p === undefined) return null
  const text =
    p._tag === 'deciding'
      ? 'Asking head office…'
      : p._tag === 'failed'
        ? p.message
        : `${p.refunded > 0 ? `Refunded ${formatCents(p.refunded)}.` : 'Nothing was refunded.'}${p.refused.length > 0 ? ` ${p.refused.join(' ')}` : ''}`
  return (
    <div className="small-print" data-testid={`refund-result-${props.orderId}`}>
      {text}
      {p._tag === 'deciding' ? null : (
        <button className="small ghost" onClick={() => clearRefundProgress(props.orderId)}>
          OK
        </button>
      )}
    </div>
  )
}

const REFUND_REASONS = ['Customer returned the item', 'Wrong item rung up', 'Quality complaint']
const VOID_REASONS = ['Rung up by mistake', 'Customer changed their mind']

/**
 * A refund (part of the sale, with the units given back) or a void (all of it): a reason is
 * required, and nothing is sent before the cashier confirms what will happen to the money.
 */
function RefundDialog(props: {
  orderId: string
  order: OrderState
  mode: 'refund' | 'void'
  refundable: number
  onDone: () => void
}) {
  const { client, session, data } = usePos()
  const { order: o, mode } = props
  const isVoid = mode === 'void'
  const [returned, setReturned] = useState<Record<string, number>>({})
  const [amountText, setAmountText] = useState('')
  const presets = isVoid ? VOID_REASONS : REFUND_REASONS
  const [preset, setPreset] = useState<string>(presets[0] ?? 'Other')
  const [other, setOther] = useState('')
  const [review, setReview] = useState(false)
  const lines = o.lines.map((l) => ({
    sku: l.sku,
    name: l.name,
    max: l.qty - (o.returned[l.sku] ?? 0),
    unitPrice: l.unitPrice,
    qty: isVoid ? l.qty - (o.returned[l.sku] ?? 0) : Math.min(returned[l.sku] ?? 0, l.qty),
  }))
  // The units' value after the sale's discount, so a returned item refunds what it cost.
  let value = 0
  for (const l of lines) value += l.qty * l.unitPrice
  const suggested =
    o.subtotal === 0 ? 0 : Math.min(props.refundable, Math.round((value * o.total) / o.subtotal))
  const typed = amountText.trim() === '' ? undefined : parseCents(amountText)
  const amount = isVoid ? props.refundable : (typed ?? suggested)
  const reason = parseRefundReason(preset === 'Other' ? other : preset)
  const amountError =
    amountText.trim() !== '' && typed === undefined
      ? 'Type an amount, like 3 or 3.20.'
      : amount <= 0
        ? 'Choose the items given back, or type an amount.'
        : amount > props.refundable
          ? `At most ${formatCents(props.refundable)} can be refunded on this sale.`
          : undefined
  const parts =
    amountError === undefined ? refundParts(orderPayments(data, props.orderId), amount) : []
  const cash = parts.find((p) => p.method === 'cash')
  const shiftError =
    cash !== undefined && !data.drawer.view.open
      ? 'Cash goes back out of the drawer: open a shift on the Drawer screen first.'
      : undefined
  const ready = amountError === undefined && reason._tag === 'ok' && shiftError === undefined

  const confirm = () => {
    if (!ready || reason._tag !== 'ok') return
    void runRefund(client, session, {
      orderId: props.orderId,
      saleEntry: o.saleEntry,
      date: data.date,
      parts,
      lines: lines.filter((l) => l.qty > 0).map((l) => ({ sku: l.sku, qty: l.qty })),
      reason: reason.reason,
      void: isVoid,
    })
    props.onDone()
  }

  return (
    <div className="dialog refund-dialog" data-testid="refund-dialog">
      <h3>
        {isVoid ? 'Void' : 'Refund'} receipt {receiptNumber(props.orderId)}
      </h3>
      {review ? (
        <div data-testid="refund-review">
          <p>
            {isVoid ? 'Void the whole sale and refund' : 'Refund'} <b>{formatCents(amount)}</b>:
          </p>
          <ul>
            {parts.map((p) => (
              <li key={p.paymentId}>{partWords(p)}</li>
            ))}
            {lines.some((l) => l.qty > 0) ? (
              <li>
                Back on the shelf:{' '}
                {lines
                  .filter((l) => l.qty > 0)
                  .map((l) => `${l.qty} × ${l.name}`)
                  .join(', ')}
              </li>
            ) : null}
            <li>Reason: {reason._tag === 'ok' ? reason.reason : ''}</li>
          </ul>
          <p className="muted small-print">
            Head office decides each part; nothing is refunded before it agrees.
          </p>
          <div className="row">
            <button className="ghost" onClick={() => setReview(false)}>
              Back
            </button>
            <button className="primary" data-testid="refund-confirm" onClick={confirm}>
              Confirm {isVoid ? 'void' : 'refund'} of {formatCents(amount)}
            </button>
          </div>
        </div>
      ) : (
        <>
          {isVoid ? (
            <p>
              Everything on the receipt comes back; {formatCents(props.refundable)} is refunded.
            </p>
          ) : (
            <>
              <p className="muted">Items given back (leave at 0 to refund an amount only):</p>
              <ul className="lines">
                {lines.map((l) => (
                  <li key={l.sku}>
                    <span className="line-name">{l.name}</span>
                    <input
                      className="narrow"
                      type="number"
                      min={0}
                      max={l.max}
                      aria-label={`${l.name} given back`}
                      data-testid={`refund-qty-${l.sku}`}
                      value={l.qty}
                      onChange={(e) =>
                        setReturned({
                          ...returned,
                          [l.sku]: Math.max(
                            0,
                            Math.min(l.max, Math.floor(Number(e.target.value) || 0)),
                          ),
                        })
                      }
                    />
                    <span className="muted small-print">of {l.max}</span>
                  </li>
                ))}
              </ul>
              <label>
                Amount to refund ($)
                <input
                  className="narrow"
                  inputMode="decimal"
                  data-testid="refund-amount"
                  placeholder={(suggested / 100).toFixed(2)}
                  value={amountText}
                  onChange={(e) => setAmountText(e.target.value)}
                />
              </label>
            </>
          )}
          <label>
            Reason
            <select
              data-testid="refund-reason"
              value={preset}
              onChange={(e) => setPreset(e.target.value)}
            >
              {[...presets, 'Other'].map((r) => (
                <option key={r} value={r}>
                  {r === 'Other' ? 'Other (say why)' : r}
                </option>
              ))}
            </select>
          </label>
          {preset === 'Other' ? (
            <input
              data-testid="refund-reason-other"
              placeholder="Why is this refunded?"
              value={other}
              onChange={(e) => setOther(e.target.value)}
            />
          ) : null}
          {[amountError, reason._tag === 'invalid' ? reason.reason : undefined, shiftError]
            .filter((m) => m !== undefined)
            .map((m) => (
              <p key={m} className="field-error" data-testid="refund-error">
                {m}
              </p>
            ))}
          <div className="row">
            <button className="ghost" onClick={props.onDone}>
              Cancel
            </button>
            <button
              className="primary"
              disabled={!ready}
              data-testid="refund-review-button"
              onClick={() => setReview(true)}
            >
              Review {isVoid ? 'void' : 'refund'}
            </button>
          </div>
        </>
      )}
    </div>
  )
}

function partWords(p: RefundPart): string {
  switch (p.method) {
    case 'cash':
      return `${formatCents(p.amount)} in cash, out of this drawer`
    case 'card':
      return `${formatCents(p.amount)} back to the customer’s card`
    case 'giftcard':
      return `${formatCents(p.amount)} back onto gift card ${p.card}`
  }
}

function paymentLabel(pays: readonly PosEntity<PaymentState>[]): string {
  return pays
    .filter((p) => p.view.method !== '')
    .map((pay) => {
      const p = pay.view
      if (p.method === 'cash') return 'cash'
      if (p.method === 'giftcard') return `gift card ${p.last4}`
      const card = `card •••• ${p.last4}`
      if (p.status === 'declined') return `${card} · declined`
      if (pay.pending.length > 0) return `${card} · ${p.offline ? 'stored offline' : 'sending'}`
      return `${card} · accepted`
    })
    .join(' + ')
}

// ---------------------------------------------------------------------------------------------
// Stock

export function StockView() {
  const { data, session, client } = usePos()
  return (
    <section className="card">
      <h2>Stock at {STORES.find((s) => s.id === session.store)?.name ?? session.store}</h2>
      <p className="muted">
        Each number adds up every movement: sales, returns, deliveries and counts. Nothing is
        overwritten.
      </p>
      <div className="table-scroll">
        <table className="table">
          <thead>
            <tr>
              <th>Item</th>
              <th className="num">On hand</th>
              <th className="num">At head office</th>
              <th>Flags</th>
              <th>Count</th>
            </tr>
          </thead>
          <tbody>
            {CATALOG.map((item) => {
              const snap = data.stock.get(item.sku)
              const entity = `stock/${session.store}:${item.sku}`
              if (snap === undefined) return null
              const onHand = stockOnHand(snap.view, entity)
              return (
                <tr key={item.sku} data-testid={`stock-row-${item.sku}`}>
                  <td>{productName(data, item)}</td>
                  <td
                    className={onHand < 0 ? 'num negative' : 'num'}
                    data-testid={`stock-onhand-${item.sku}`}
                  >
                    {onHand}
                  </td>
                  <td className="num" data-testid={`stock-confirmed-${item.sku}`}>
                    {stockOnHand(snap.confirmed, entity)}
                  </td>
                  <td>
                    {snap.view.oversold.length > 0 ? (
                      <span
                        className="state-pill corrected"
                        data-testid={`stock-oversold-${item.sku}`}
                      >
                        oversold ×{snap.view.oversold.length}
                      </span>
                    ) : null}
                    {snap.view.recountDue ? (
                      <span className="state-pill due" data-testid={`stock-recount-${item.sku}`}>
                        recount due
                      </span>
                    ) : null}
                    {snap.pending.length > 0 ? (
                      <span className="state-pill pending">
                        {snap.pending.length} not yet at head office
                      </span>
                    ) : null}
                  </td>
                  <td>
                    <CountForm
                      sku={item.sku}
                      onCount={(counted) =>
                        client.append(entity, 'stock.counted', { sku: item.sku, counted })
                      }
                    />
                  </td>
                </tr>
              )
            })}
          </tbody>
        </table>
      </div>
    </section>
  )
}

function CountForm(props: { sku: string; onCount: (counted: number) => Promise<unknown> }) {
  const [text, setText] = useState('')
  const n = Number(text)
  const ok = text.trim() !== '' && Number.isSafeInteger(n) && n >= 0
  return (
    <form
      className="inline"
      onSubmit={(e) => {
        e.preventDefault()
        if (!ok) return
        void props.onCount(n).then(() => setText(''))
      }}
    >
      <input
        className="narrow"
        inputMode="numeric"
        placeholder="count"
        data-testid={`count-input-${props.sku}`}
        value={text}
        onChange={(e) => setText(e.target.value)}
      />
      <button className="small" disabled={!ok} data-testid={`count-save-${props.sku}`}>
        Record
      </button>
    </form>
  )
}

// ---------------------------------------------------------------------------------------------
// Inbox

export function InboxView() {
  const { data, session, client } = usePos()
  const items = inboxItems(data, session.store)
  // Showing the inbox is seeing the corrections: the status bar's "new in the Inbox" clears.
  useEffect(() => {
    void client.markCorrectionsSeen()
  }, [client, items.length])
  return (
    <section className="card" data-testid="inbox">
      <h2>Inbox</h2>
      <p className="muted">
        What head office corrected after offline sales reached it, and what is left to do. Nothing
        is rewritten: each correction sits next to the sale it answers.
      </p>
      {items.length === 0 ? (
        <p className="muted" data-testid="inbox-empty">
          Nothing to resolve.
        </p>
      ) : null}
      <ul className="inbox" data-testid="inbox-list">
        {items.map((item) => (
          <InboxCard key={item.id} item={item} />
        ))}
      </ul>
    </section>
  )
}

function InboxCard(props: { item: InboxItem }) {
  const { client, session, data } = usePos()
  const { item } = props
  const [count, setCount] = useState('')
  const [confirmWriteOff, setConfirmWriteOff] = useState(false)
  const isRegister = session.register !== 'hq'
  const shiftOpen = data.drawer.view.open
  const collect = () => {
    if (item.order === undefined || item.amount === undefined) return
    const paymentId = `${item.order}-c${Date.now().toString(36)}`
    void client.appendMany(collectDrafts(session, data.date, item.order, item.amount, paymentId))
  }
  const writeOff = () => {
    if (item.order === undefined || item.amount === undefined) return
    void client.appendMany(writeOffDrafts(session, data.date, item.order, item.amount))
  }
  return (
    <li
      className={item.open ? 'inbox-item open' : 'inbox-item'}
      data-testid="inbox-item"
      data-kind={item.kind}
      data-open={item.open}
    >
      <div className="inbox-head">
        <span className="kind">{item.label}</span>
        <strong data-testid="inbox-title">{item.title}</strong>
        <span className={item.open ? 'state-pill due' : 'state-pill synced'}>
          {item.open ? 'to do' : 'resolved'}
        </span>
      </div>
      <p>
        <b>What happened:</b> {item.happened}
      </p>
      <p data-testid="inbox-todo">
        <b>What to do:</b> {item.todo}
      </p>
      {item.open && item.kind === 'stock.oversold' && item.sku !== undefined ? (
        <form
          className="inline"
          onSubmit={(e) => {
            e.preventDefault()
            const n = Number(count)
            if (count.trim() === '' || !Number.isSafeInteger(n) || n < 0) return
            void client.append(item.entity, 'stock.counted', { sku: item.sku ?? '', counted: n })
          }}
        >
          <input
            className="narrow"
            inputMode="numeric"
            placeholder="counted"
            data-testid="inbox-count-input"
            value={count}
            onChange={(e) => setCount(e.target.value)}
          />
          <button className="small" data-testid="inbox-count">
            Record count
          </button>
        </form>
      ) : null}
      {item.open && item.kind === 'order.balance_due' ? (
        <div className="row">
          {isRegister ? (
            <button
              className="small"
              data-testid="inbox-collect"
              disabled={!shiftOpen}
              title={shiftOpen ? '' : 'Open a shift first: the cash goes into this drawer'}
              onClick={collect}
            >
              Collected {formatCents(item.amount ?? 0)} in cash
            </button>
          ) : null}
          {confirmWriteOff ? (
            <>
              <span>Write off {formatCents(item.amount ?? 0)}? The store gives up on it.</span>
              <button className="small" data-testid="inbox-writeoff-confirm" onClick={writeOff}>
                Confirm write-off
              </button>
              <button className="small ghost" onClick={() => setConfirmWriteOff(false)}>
                Back
              </button>
            </>
          ) : (
            <button
              className="small ghost"
              data-testid="inbox-writeoff"
              onClick={() => setConfirmWriteOff(true)}
            >
              Write off…
            </button>
          )}
          {isRegister && !shiftOpen ? (
            <span className="muted small-print">Open a shift to take the cash.</span>
          ) : null}
        </div>
      ) : null}
      {item.open && item.kind === 'product.name_conflict' && item.sku !== undefined ? (
        <PickName sku={item.sku} names={item.names ?? []} />
      ) : null}
    </li>
  )
}

// ---------------------------------------------------------------------------------------------
// Drawer

export function DrawerView() {
  const { data, client, session } = usePos()
  const d = data.drawer.view
  const [float, setFloat] = useState('100.00')
  const [counted, setCounted] = useState('')
  const expected = drawerExpected(d)
  const countedCents = parseCents(counted)
  const floatCents = parseCents(float)
  const entity = drawerEntity(session)
  return (
    <section className="card narrow-card" data-testid="drawer">
      <h2>
        Cash drawer · {registerName(session.register)} ·{' '}
        <span data-testid="drawer-shift">shift {d.shift}</span>{' '}
        <span
          className={d.open ? 'state-pill synced' : 'state-pill due'}
          data-testid="drawer-state"
        >
          {d.open ? 'open' : 'not open'}
        </span>
      </h2>
      {d.open ? (
        <p className="muted">
          Opened {new Date(d.openedAt).toLocaleTimeString()} on {d.date || 'an earlier day'}.
        </p>
      ) : (
        <>
          <p data-testid="drawer-closed-note">
            No shift is open: open shift {d.shift} with its float before taking cash.
          </p>
          <form
            className="inline"
            onSubmit={(e) => {
              e.preventDefault()
              if (floatCents !== undefined) {
                void client.append(entity, 'shift.opened', { float: floatCents, date: data.date })
              }
            }}
          >
            <label>
              Opening float
              <input
                className="narrow"
                data-testid="drawer-float"
                value={float}
                onChange={(e) => setFloat(e.target.value)}
              />
            </label>
            <button
              className="primary"
              disabled={floatCents === undefined}
              data-testid="drawer-open"
            >
              Open shift {d.shift}
            </button>
          </form>
        </>
      )}
      <dl className="totals">
        <dt>Float</dt>
        <dd>{formatCents(d.float)}</dd>
        <dt>Cash in (sales, collections)</dt>
        <dd>{formatCents(d.cashIn)}</dd>
        <dt>Cash out (refunds)</dt>
        <dd>{formatDeduction(d.cashOut)}</dd>
        <dt className="total">Expected in drawer</dt>
        <dd className="total" data-testid="drawer-expected">
          {formatCents(expected)}
        </dd>
      </dl>
      <form
        className="inline"
        onSubmit={(e) => {
          e.preventDefault()
          if (d.open && countedCents !== undefined) {
            void client
              .append(entity, 'shift.closed', { counted: countedCents, shift: d.shift })
              .then(() => setCounted(''))
          }
        }}
      >
        <label>
          Counted
          <input
            className="narrow"
            inputMode="decimal"
            data-testid="drawer-counted"
            disabled={!d.open}
            value={counted}
            onChange={(e) => setCounted(e.target.value)}
          />
        </label>
        <button
          className="primary"
          disabled={!d.open || countedCents === undefined}
          title={d.open ? '' : 'No shift is open, so there is nothing to close'}
          data-testid="drawer-close"
        >
          Close shift {d.open ? d.shift : ''}
        </button>
      </form>
      {d.closes.length > 0 ? (
        <div className="table-scroll">
          <table className="table">
            <thead>
              <tr>
                <th>Shift</th>
                <th>Day</th>
                <th className="num">Expected</th>
                <th className="num">Counted</th>
                <th className="num">Over / short</th>
              </tr>
            </thead>
            <tbody>
              {[...d.closes].reverse().map((c) => (
                <tr key={c.shift} data-testid="drawer-close-row">
                  <td>{c.shift}</td>
                  <td>{c.date}</td>
                  <td className="num">{formatCents(c.expected)}</td>
                  <td className="num">{formatCents(c.counted)}</td>
                  <td className={c.delta < 0 ? 'num negative' : 'num'} data-testid="drawer-delta">
                    {overShortWords(c.delta)}
                    {c.correction === undefined ? null : ' · in the Inbox'}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
    </section>
  )
}

function overShortWords(delta: number): string {
  return delta === 0
    ? 'balanced'
    : `${delta > 0 ? 'over' : 'short'} ${formatCents(Math.abs(delta))}`
}

// ---------------------------------------------------------------------------------------------
// Report

export function ReportView() {
  const { data, client, session } = usePos()
  const status = useStatus<PosStatus>()
  const online = status?.online === true
  const [scope, setScope] = useState<string>(session.register === 'hq' ? 'store' : session.register)
  const [closing, setClosing] = useState<string | undefined>()
  const storeName = STORES.find((s) => s.id === session.store)?.name ?? session.store
  // Confirmed state only: every register that has synced prints the same report.
  const report = dayReport({
    date: data.date,
    scope,
    day: data.day.confirmed,
    drawers: new Map([...data.drawers].map(([r, snap]) => [r, snap.confirmed])),
  })
  const pending = pendingSales(data)
  const scopes = ['store', ...REGISTERS]

  const closeDay = async () => {
    setClosing('Asking head office…')
    const { id } = await client.append(
      dayEntity(session.store, data.date),
      'day.closed',
      { by: session.register },
      { intent: 'request' },
    )
    const outcome = await waitForOutcome(client, id, DECISION_WAIT_MS)
    setClosing(
      outcome._tag === 'refused'
        ? refusalWords(outcome, 'the business day')
        : outcome._tag === 'outbox' || outcome._tag === 'unknown'
          ? 'Head office has not answered yet; the day closes when it does.'
          : undefined,
    )
  }

  return (
    <section className="card report printable" data-testid="report" data-scope={scope}>
      <div className="report-head">
        <h2>
          Day report · {storeName} · {data.date}
        </h2>
        <label className="no-print">
          Covers
          <select
            data-testid="report-scope"
            value={scope}
            onChange={(e) => setScope(e.target.value)}
          >
            {scopes.map((s) => (
              <option key={s} value={s}>
                {s === 'store' ? 'The whole store' : registerName(s)}
              </option>
            ))}
          </select>
        </label>
      </div>
      <p data-testid="report-covers">
        <b>
          {scope === 'store'
            ? `The whole store: ${report.registers.map(registerName).join(', ')}.`
            : `${registerName(scope)} only.`}
        </b>{' '}
        Built from what head office has confirmed, so every register shows the same report.
      </p>
      {pending.count > 0 ? (
        <p className="banner warn no-print" data-testid="report-pending">
          {pending.count} sale{pending.count === 1 ? '' : 's'} of this register (
          {formatCents(pending.amount)}) {pending.count === 1 ? 'is' : 'are'} not yet at head office
          and not in this report.
        </p>
      ) : null}
      <ReportTables report={report} />
      <div className="row no-print">
        <button data-testid="report-print" onClick={() => window.print()}>
          Print
        </button>
        {data.day.view.closed ? (
          <p className="state-pill synced" data-testid="day-closed">
            Day closed at {new Date(data.day.view.closedAt).toLocaleTimeString()} · takings{' '}
            {formatCents(data.day.view.closedTotal)}
          </p>
        ) : (
          <button
            className="primary"
            disabled={!online || closing === 'Asking head office…'}
            data-testid="close-day"
            onClick={() => void closeDay()}
          >
            Close business day
          </button>
        )}
        {!online && !data.day.view.closed ? (
          <span className="muted">Closing the day needs head office: reconnect first.</span>
        ) : null}
      </div>
      {closing === undefined || data.day.view.closed ? null : (
        <p data-testid="close-day-result">{closing}</p>
      )}
    </section>
  )
}

const TENDER_WORDS = { cash: 'Cash', card: 'Card', giftcard: 'Gift card' } as const

function Cents(props: { value: number; testId?: string; deduct?: boolean }) {
  return (
    <td className="num" data-testid={props.testId} data-cents={props.value}>
      {props.deduct === true ? formatDeduction(props.value) : formatCents(props.value)}
    </td>
  )
}

function ReportTables(props: { report: DayReport }) {
  const r = props.report
  return (
    <>
      <h3>Takings</h3>
      <div className="table-scroll">
        <table className="table" data-testid="report-takings">
          <thead>
            <tr>
              <th>Paid with</th>
              <th className="num">Sales</th>
              <th className="num">Declined</th>
              <th className="num">Refunds</th>
              <th className="num">Collected</th>
              <th className="num">Takings</th>
            </tr>
          </thead>
          <tbody>
            {r.tenders.map((t) => (
              <tr key={t.method} data-testid={`report-tender-${t.method}`}>
                <td>{TENDER_WORDS[t.method]}</td>
                <Cents value={t.sales} testId={`report-${t.method}-sales`} />
                <Cents value={t.declined} testId={`report-${t.method}-declined`} deduct />
                <Cents value={t.refunds} testId={`report-${t.method}-refunds`} deduct />
                <Cents value={t.collected} testId={`report-${t.method}-collected`} />
                <Cents value={t.takings} testId={`report-${t.method}-takings`} />
              </tr>
            ))}
            <tr className="total">
              <td>
                All ({r.salesCount} sale{r.salesCount === 1 ? '' : 's'})
              </td>
              <Cents value={r.totals.sales} testId="report-total-sales" />
              <Cents value={r.totals.declined} testId="report-total-declined" deduct />
              <Cents value={r.totals.refunds} testId="report-total-refunds" deduct />
              <Cents value={r.totals.collected} testId="report-total-collected" />
              <Cents value={r.totals.takings} testId="report-total-takings" />
            </tr>
          </tbody>
        </table>
      </div>
      <p>
        Written off (declined cards the store gave up on):{' '}
        <span data-testid="report-written-off" data-cents={r.writtenOff}>
          {formatCents(r.writtenOff)}
        </span>
      </p>
      <h3>Cash drawers</h3>
      <div className="table-scroll">
        <table className="table" data-testid="report-drawers">
          <thead>
            <tr>
              <th>Register</th>
              <th className="num">Shifts</th>
              <th className="num">Float</th>
              <th className="num">Cash takings</th>
              <th className="num">Expected</th>
              <th className="num">Counted</th>
              <th className="num">Over / short</th>
              <th>Check</th>
            </tr>
          </thead>
          <tbody>
            {r.drawers.map((d) => (
              <DrawerReportRow key={d.register} row={d} />
            ))}
            <tr className="total">
              <td>All drawers</td>
              <td />
              <td />
              <td />
              <Cents value={r.expectedCash} testId="report-expected-cash" />
              {r.countedCash === null ? (
                <td className="num">a shift is open</td>
              ) : (
                <Cents value={r.countedCash} testId="report-counted-cash" />
              )}
              <td className="num" data-testid="report-over-short" data-cents={r.overShort ?? ''}>
                {r.overShort === null ? '' : overShortWords(r.overShort)}
              </td>
              <td />
            </tr>
          </tbody>
        </table>
      </div>
      {r.closed === null ? null : (
        <p data-testid="report-closed">
          Closed at {new Date(r.closed.at).toLocaleTimeString()} with takings of{' '}
          {formatCents(r.closed.total)} for the whole store.
        </p>
      )}
      <h3>After the close</h3>
      <p data-testid="report-late">
        {r.afterClose.length === 0
          ? 'Nothing arrived after the day was closed.'
          : `${r.afterClose.length} arrived after the day was closed (included above, not in the closed total): ${r.afterClose
              .map((m) => `${receiptNumber(m.order)} ${formatCents(m.amount)}`)
              .join(', ')}.`}
      </p>
    </>
  )
}

function DrawerReportRow(props: { row: DrawerRow }) {
  const d = props.row
  return (
    <tr data-testid={`report-drawer-${d.register}`}>
      <td>{registerName(d.register)}</td>
      <td className="num">
        {d.shifts}
        {d.openShifts > 0 ? ' (open)' : ''}
      </td>
      <Cents value={d.float} />
      <Cents value={d.dayCash} testId={`report-drawer-${d.register}-cash`} />
      <Cents value={d.expected} testId={`report-drawer-${d.register}-expected`} />
      {d.counted === null || d.shifts === 0 ? (
        <td className="num">{d.shifts === 0 ? 'no shift' : 'shift open'}</td>
      ) : (
        <Cents value={d.counted} testId={`report-drawer-${d.register}-counted`} />
      )}
      <td
        className={d.overShort !== null && d.overShort < 0 ? 'num negative' : 'num'}
        data-testid={`report-drawer-${d.register}-over-short`}
        data-cents={d.overShort ?? ''}
      >
        {d.overShort === null || d.shifts === 0 ? '' : overShortWords(d.overShort)}
      </td>
      <td data-testid={`report-drawer-${d.register}-check`} data-mismatch={d.mismatch}>
        {d.mismatch === 0
          ? d.shifts === 0 && d.dayCash === 0
            ? ''
            : 'agrees with the drawer'
          : `drawer differs by ${formatCents(Math.abs(d.mismatch))}`}
      </td>
    </tr>
  )
}

// ---------------------------------------------------------------------------------------------
// Settings

export function SettingsView() {
  const { limits, setLimits } = usePos()
  const [perSale, setPerSale] = useState((limits.perSaleMax / 100).toFixed(2))
  const [stored, setStored] = useState((limits.storedMax / 100).toFixed(2))
  const [hours, setHours] = useState(String(limits.forwardHours))
  const [saved, setSaved] = useState(false)
  const p = parseCents(perSale)
  const s = parseCents(stored)
  const h = Number(hours)
  const ok = p !== undefined && s !== undefined && Number.isFinite(h) && h > 0
  return (
    <section className="card narrow-card">
      <h2>Offline card limits</h2>
      <p className="muted">
        While offline, card payments are stored and sent to head office later, and the store carries
        the risk that a card is declined then. These limits cap that risk; a card payment beyond
        them is refused with the reason. Cash is never refused by them.
      </p>
      <form
        className="stack"
        onSubmit={(e) => {
          e.preventDefault()
          if (!ok) return
          setLimits({ perSaleMax: p, storedMax: s, forwardHours: h })
          setSaved(true)
        }}
      >
        <label>
          Largest card payment taken offline ($)
          <input
            data-testid="limit-per-sale"
            value={perSale}
            onChange={(e) => (setPerSale(e.target.value), setSaved(false))}
          />
        </label>
        <label>
          Most card payments held on this register, not yet sent ($)
          <input
            data-testid="limit-stored"
            value={stored}
            onChange={(e) => (setStored(e.target.value), setSaved(false))}
          />
        </label>
        <label>
          Hours allowed to send card payments taken offline
          <input
            data-testid="limit-hours"
            value={hours}
            onChange={(e) => (setHours(e.target.value), setSaved(false))}
          />
        </label>
        <button className="primary" disabled={!ok} data-testid="limits-save">
          Save limits
        </button>
        {saved ? <p data-testid="limits-saved">Saved.</p> : null}
      </form>
    </section>
  )
}
