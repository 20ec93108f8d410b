/**
 * The register's other screens: orders with their state, stock, the conflicts inbox, drawer
 * close, the end-of-day report and the offline limits. Every action appends entries; nothing
 * edits one.
 */
import { useStatus } from '@ledgerline/react'
import { useEffect, useState } from 'react'
import { CATALOG } from './catalog.ts'
import { inboxItems, type InboxItem } from './inbox.ts'
import { formatCents, parseCents } from './money.ts'
import { type PosStatus, waitForOutcome } from './pos-client.ts'
import { usePos } from './pos-context.ts'
import { dayEntity, drawerEntity, receiptNumber, refundDrafts } from './sale.ts'
import { drawerExpected, type PaymentState, stockOnHand } from './schema.ts'
import type { EntityState } from '@ledgerline/client'
import { orderCorrections, orderSyncState } from './store-data.ts'

// ---------------------------------------------------------------------------------------------
// Orders

export function OrdersView() {
  const { data } = usePos()
  const orders = [...data.orders.entries()]
  return (
    <section className="card">
      <h2>Orders today</h2>
      {orders.length === 0 ? <p className="muted">No sales yet today.</p> : null}
      <table className="table" data-testid="orders-table">
        <thead>
          <tr>
            <th>Order</th>
            <th>Register</th>
            <th>Time</th>
            <th>Items</th>
            <th className="num">Total</th>
            <th>Payment</th>
            <th>State</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {orders.map(([id]) => (
            <OrderRow key={id} orderId={id} />
          ))}
        </tbody>
      </table>
    </section>
  )
}

function OrderRow(props: { orderId: string }) {
  const { data, client, session } = usePos()
  const status = useStatus<PosStatus>()
  const online = status?.online === true
  const [message, setMessage] = useState<string | undefined>()
  const [busy, setBusy] = useState(false)
  const id = props.orderId
  const snap = data.orders.get(id)
  const pay = data.payments.get(id)
  if (snap === undefined) return null
  const o = snap.view
  const state = orderSyncState(data, id)
  const corrections = orderCorrections(data, id)
  const refundable = o.status === 'completed' && o.refunded === 0 && o.register === session.register

  const refund = async (asVoid: boolean) => {
    setBusy(true)
    setMessage(undefined)
    try {
      // The refund is a request on the payment: only head office knows what was captured.
      const { id: entryId } = await client.append(
        `payment/${id}-1`,
        'payment.refunded',
        { amount: o.total, order: id },
        { intent: 'request' },
      )
      const outcome = await waitForOutcome(client, entryId)
      if (outcome._tag === 'refused') {
        setMessage(`Refused: ${outcome.reason}`)
        return
      }
      if (outcome._tag === 'outbox') {
        setMessage('Waiting for head office to decide the refund.')
        return
      }
      await client.appendMany(
        refundDrafts({
          session,
          orderId: id,
          saleEntry: o.saleEntry,
          date: data.date,
          lines: o.lines,
          amount: o.total,
          tender: o.tender,
          void: asVoid,
        }),
      )
      setMessage(asVoid ? 'Voided.' : 'Refunded.')
    } finally {
      setBusy(false)
    }
  }

  return (
    <tr data-testid={`order-row-${id}`} data-order={id} data-state={state}>
      <td className="mono">{receiptNumber(id)}</td>
      <td>{o.register}</td>
      <td>{o.occurredAt === 0 ? '' : new Date(o.occurredAt).toLocaleTimeString()}</td>
      <td>{o.lines.map((l) => `${l.qty}× ${l.name}`).join(', ')}</td>
      <td className="num">{formatCents(o.total)}</td>
      <td data-testid={`order-payment-${id}`}>{paymentLabel(pay)}</td>
      <td>
        <span className={`state-pill ${state}`} data-testid={`order-state-${id}`}>
          {state}
        </span>
        {o.status === 'voided' ? <span className="state-pill corrected">voided</span> : null}
        {o.refunded > 0 && o.status !== 'voided' ? (
          <span className="state-pill corrected">refunded</span>
        ) : null}
        {o.balanceDue > 0 ? (
          <span className="state-pill due" data-testid={`order-balance-${id}`}>
            {formatCents(o.balanceDue)} due
          </span>
        ) : null}
        {corrections.length > 0 ? (
          <div className="muted small-print">{[...new Set(corrections)].join(', ')}</div>
        ) : null}
      </td>
      <td className="actions">
        {refundable ? (
          <>
            <button
              className="small"
              disabled={!online || busy}
              title={online ? '' : 'Refunds need a connection'}
              onClick={() => void refund(false)}
            >
              Refund
            </button>
            <button
              className="small"
              disabled={!online || busy}
              title={online ? '' : 'Voids need a connection'}
              onClick={() => void refund(true)}
            >
              Void
            </button>
          </>
        ) : null}
        {message === undefined ? null : <div className="small-print">{message}</div>}
      </td>
    </tr>
  )
}

function paymentLabel(pay: EntityState<PaymentState> | undefined): string {
  if (pay === undefined || pay.view.method === '') return ''
  const p = pay.view
  if (p.method === 'cash') return 'cash'
  if (p.method === 'giftcard') return `gift card ${p.last4}`
  const card = `card •••• ${p.last4}`
  if (p.status === 'declined') return `${card} · declined`
  if (pay.pending.length > 0) return `${card} · ${p.offline ? 'stored offline' : 'sending'}`
  return `${card} · authorized`
}

// ---------------------------------------------------------------------------------------------
// Stock

export function StockView() {
  const { data, session, client } = usePos()
  return (
    <section className="card">
      <h2>Stock at {session.store}</h2>
      <p className="muted">
        Each number is a ledger of movements: sales, returns, receiving and counts. Nothing is
        overwritten.
      </p>
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
                <td>{item.name}</td>
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
                    <span className="state-pill pending">{snap.pending.length} pending</span>
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
  // Showing the inbox is seeing the corrections: the status bar's "new corrections" clears.
  useEffect(() => {
    void client.markCorrectionsSeen()
  }, [client, items.length])
  return (
    <section className="card">
      <h2>Conflicts inbox</h2>
      <p className="muted">
        Every correction head office appended after offline sales reached it. History is never
        rewritten: each one is a new entry next to the sale it answers.
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
  const collect = async () => {
    if (item.order === undefined || item.amount === undefined) return
    const paymentId = `${item.order}-${Date.now().toString(36)}`
    await client.appendMany([
      {
        entity: `payment/${paymentId}`,
        kind: 'cash.received',
        data: { order: item.order, amount: item.amount, tendered: item.amount, change: 0 },
      },
      {
        entity: `order/${item.order}`,
        kind: 'order.balance_paid',
        data: { amount: item.amount, payment: paymentId },
      },
      {
        entity: drawerEntity(session),
        kind: 'cash.in',
        data: { amount: item.amount, order: item.order },
      },
    ])
  }
  const writeOff = async () => {
    if (item.order === undefined || item.amount === undefined) return
    await client.append(`order/${item.order}`, 'order.written_off', {
      amount: item.amount,
      code: 'bad_debt',
    })
  }
  return (
    <li
      className={item.open ? 'inbox-item open' : 'inbox-item'}
      data-testid="inbox-item"
      data-kind={item.kind}
      data-open={item.open}
    >
      <div className="inbox-head">
        <span className="kind mono">{item.kind}</span>
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
          <button className="small" data-testid="inbox-collect" onClick={() => void collect()}>
            Collected {formatCents(item.amount ?? 0)} in cash
          </button>
          <button
            className="small ghost"
            data-testid="inbox-writeoff"
            onClick={() => void writeOff()}
          >
            Write off
          </button>
        </div>
      ) : null}
      {data.orders.get(item.order ?? '') === undefined ? null : (
        <p className="muted small-print">
          Order {receiptNumber(item.order ?? '')} · correction {item.id}
        </p>
      )}
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
  const entity = drawerEntity(session)
  return (
    <section className="card narrow-card">
      <h2>Cash drawer · shift {d.shift}</h2>
      {!d.open ? (
        <form
          className="inline"
          onSubmit={(e) => {
            e.preventDefault()
            const cents = parseCents(float)
            if (cents !== undefined) void client.append(entity, 'shift.opened', { float: cents })
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
          <button className="primary" data-testid="drawer-open">
            Open shift
          </button>
        </form>
      ) : null}
      <dl className="totals">
        <dt>Float</dt>
        <dd>{formatCents(d.float)}</dd>
        <dt>Cash sales</dt>
        <dd>{formatCents(d.cashIn)}</dd>
        <dt>Cash refunds</dt>
        <dd>−{formatCents(d.cashOut)}</dd>
        <dt className="total">Expected in drawer</dt>
        <dd className="total" data-testid="drawer-expected">
          {formatCents(expected)}
        </dd>
      </dl>
      <form
        className="inline"
        onSubmit={(e) => {
          e.preventDefault()
          if (countedCents !== undefined) {
            void client
              .append(entity, 'shift.closed', { counted: countedCents })
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
            value={counted}
            onChange={(e) => setCounted(e.target.value)}
          />
        </label>
        <button
          className="primary"
          disabled={countedCents === undefined}
          data-testid="drawer-close"
        >
          Close shift
        </button>
      </form>
      {d.closes.length > 0 ? (
        <table className="table">
          <thead>
            <tr>
              <th>Shift</th>
              <th className="num">Expected</th>
              <th className="num">Counted</th>
              <th className="num">Over / short</th>
            </tr>
          </thead>
          <tbody>
            {[...d.closes].reverse().map((c) => (
              <tr key={c.shift} data-testid="drawer-close-row">
                <td>{c.shift}</td>
                <td className="num">{formatCents(c.expected)}</td>
                <td className="num">{formatCents(c.counted)}</td>
                <td className={c.delta < 0 ? 'num negative' : 'num'} data-testid="drawer-delta">
                  {c.delta === 0
                    ? 'balanced'
                    : `${c.delta > 0 ? 'over' : 'short'} ${formatCents(Math.abs(c.delta))}`}
                  {c.correction === undefined ? null : ' · drawer.over_short'}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
    </section>
  )
}

// ---------------------------------------------------------------------------------------------
// Report

export function ReportView() {
  const { data, client, session } = usePos()
  const status = useStatus<PosStatus>()
  const online = status?.online === true
  const [result, setResult] = useState<string | undefined>()
  const day = data.day.view
  const byTender = new Map<string, { count: number; amount: number }>()
  for (const s of day.sales) {
    const t = byTender.get(s.tender) ?? { count: 0, amount: 0 }
    byTender.set(s.tender, { count: t.count + 1, amount: t.amount + s.total })
  }
  const corrections = new Map<string, number>()
  for (const i of inboxItems(data, session.store))
    corrections.set(i.kind, (corrections.get(i.kind) ?? 0) + 1)
  let gross = 0
  for (const s of day.sales) gross += s.total

  const closeDay = async () => {
    setResult(undefined)
    const { id } = await client.append(
      dayEntity(session.store, data.date),
      'day.closed',
      { by: session.register },
      { intent: 'request' },
    )
    const outcome = await waitForOutcome(client, id)
    setResult(
      outcome._tag === 'refused'
        ? `Refused: ${outcome.reason}`
        : outcome._tag === 'outbox'
          ? 'Waiting for head office to close the day.'
          : 'The business day is closed.',
    )
  }

  return (
    <section className="card narrow-card">
      <h2>End of day · {data.date}</h2>
      <table className="table">
        <thead>
          <tr>
            <th>Payment type</th>
            <th className="num">Sales</th>
            <th className="num">Amount</th>
          </tr>
        </thead>
        <tbody>
          {[...byTender.entries()].map(([tender, t]) => (
            <tr key={tender} data-testid={`report-tender-${tender}`}>
              <td>{tender}</td>
              <td className="num">{t.count}</td>
              <td className="num">{formatCents(t.amount)}</td>
            </tr>
          ))}
          <tr className="total">
            <td>All sales</td>
            <td className="num" data-testid="report-sales-count">
              {day.sales.length}
            </td>
            <td className="num" data-testid="report-gross">
              {formatCents(gross)}
            </td>
          </tr>
          <tr>
            <td>Refunds</td>
            <td />
            <td className="num" data-testid="report-refunds">
              −{formatCents(day.refunds)}
            </td>
          </tr>
        </tbody>
      </table>
      <h3>Corrections</h3>
      {corrections.size === 0 ? <p className="muted">None.</p> : null}
      <ul>
        {[...corrections.entries()].map(([kind, n]) => (
          <li key={kind} data-testid={`report-correction-${kind}`}>
            <span className="mono">{kind}</span>: {n}
          </li>
        ))}
      </ul>
      <h3>Late entries</h3>
      <p data-testid="report-late">
        {day.adjustments.length === 0
          ? 'None.'
          : `${day.adjustments.length} entr${day.adjustments.length === 1 ? 'y' : 'ies'} arrived after close (post-close adjustments).`}
      </p>
      <div className="row">
        {day.closed ? (
          <p className="state-pill synced" data-testid="day-closed">
            Closed at {new Date(day.closedAt).toLocaleTimeString()} · {formatCents(day.closedTotal)}
          </p>
        ) : (
          <button
            className="primary"
            disabled={!online}
            data-testid="close-day"
            onClick={() => void closeDay()}
          >
            Close business day
          </button>
        )}
        {!online && !day.closed ? (
          <span className="muted">Closing the day needs head office: reconnect first.</span>
        ) : null}
      </div>
      {result === undefined ? null : <p data-testid="close-day-result">{result}</p>}
    </section>
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
      <h2>Offline limits</h2>
      <p className="muted">
        While offline, card payments are stored and forwarded later, and the store carries the risk
        of declines. These limits cap that risk; a sale beyond them is refused with the reason.
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
          Largest offline sale ($)
          <input
            data-testid="limit-per-sale"
            value={perSale}
            onChange={(e) => (setPerSale(e.target.value), setSaved(false))}
          />
        </label>
        <label>
          Most unsynced sales held on this register ($)
          <input
            data-testid="limit-stored"
            value={stored}
            onChange={(e) => (setStored(e.target.value), setSaved(false))}
          />
        </label>
        <label>
          Hours allowed to forward offline sales
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
