/**
 * Head office: changes a store's prices and receives stock (facts head office is the author
 * of), renames items and edits their descriptions, and issues gift cards. A price change made
 * while a register is offline is what the `order.price_variance` correction answers; two
 * renames made at once are what head office picks between.
 */
import { useEntity } from '@ledgerline/react'
import { useState } from 'react'
import { CATALOG, type CatalogItem, STORES } from './catalog.ts'
import { CatalogTextEditor } from './crdt/catalog-text-editor.tsx'
import { formatCents, parseCents } from './money.ts'
import { usePos } from './pos-context.ts'
import { ProductNamesEditor } from './product-names.tsx'
import { type GiftCardState, listPriceAt, stockOnHand } from './schema.ts'
import { productName } from './store-data.ts'

export function HeadOfficeView() {
  const { session } = usePos()
  return (
    <div className="stack">
      <section className="card">
        <h2>
          Prices and stock at {STORES.find((s) => s.id === session.store)?.name ?? session.store}
        </h2>
        <div className="table-scroll">
          <table className="table">
            <thead>
              <tr>
                <th>Item</th>
                <th className="num">List price</th>
                <th>New price ($)</th>
                <th className="num">On hand</th>
                <th>Receive</th>
              </tr>
            </thead>
            <tbody>
              {CATALOG.map((item) => (
                <ItemRow key={item.sku} item={item} />
              ))}
            </tbody>
          </table>
        </div>
      </section>
      <ProductNamesEditor />
      <CatalogTextEditor />
      <GiftCards />
    </div>
  )
}

function ItemRow(props: { item: CatalogItem }) {
  const { client, session, data } = usePos()
  const { item } = props
  const [priceText, setPriceText] = useState('')
  const [qty, setQty] = useState('')
  const price = data.prices.get(item.sku)
  const stock = data.stock.get(item.sku)
  const stockEntity = `stock/${session.store}:${item.sku}`
  const listed = price === undefined ? item.price : listPriceAt(price.view, item.sku, Date.now())
  const newPrice = parseCents(priceText)
  const n = Number(qty)
  return (
    <tr data-testid={`hq-row-${item.sku}`}>
      <td>{productName(data, item)}</td>
      <td className="num" data-testid={`hq-price-${item.sku}`}>
        {formatCents(listed)}
      </td>
      <td>
        <form
          className="inline"
          onSubmit={(e) => {
            e.preventDefault()
            if (newPrice === undefined) return
            void client
              .append(`price/${session.store}:${item.sku}`, 'price.set', {
                sku: item.sku,
                amount: newPrice,
                effectiveFrom: Date.now(),
              })
              .then(() => setPriceText(''))
          }}
        >
          <input
            className="narrow"
            data-testid={`price-input-${item.sku}`}
            value={priceText}
            onChange={(e) => setPriceText(e.target.value)}
          />
          <button
            className="small"
            disabled={newPrice === undefined}
            data-testid={`price-save-${item.sku}`}
          >
            Set price
          </button>
        </form>
      </td>
      <td className="num">
        {stock === undefined ? item.opening : stockOnHand(stock.view, stockEntity)}
      </td>
      <td>
        <form
          className="inline"
          onSubmit={(e) => {
            e.preventDefault()
            if (!Number.isSafeInteger(n) || n <= 0) return
            void client
              .append(stockEntity, 'stock.received', { sku: item.sku, qty: n })
              .then(() => setQty(''))
          }}
        >
          <input
            className="narrow"
            inputMode="numeric"
            data-testid={`receive-qty-${item.sku}`}
            value={qty}
            onChange={(e) => setQty(e.target.value)}
          />
          <button
            className="small"
            disabled={!Number.isSafeInteger(n) || n <= 0}
            data-testid={`receive-${item.sku}`}
          >
            Receive
          </button>
        </form>
      </td>
    </tr>
  )
}

function GiftCards() {
  const { client } = usePos()
  const [code, setCode] = useState('GC-1000')
  const [amount, setAmount] = useState('50.00')
  const card = code.trim().toUpperCase()
  const valid = /^[A-Z0-9-]{3,32}$/.test(card)
  const gc = useEntity<GiftCardState>(`giftcard/${valid ? card : 'none'}`)
  const cents = parseCents(amount)
  return (
    <section className="card narrow-card">
      <h2>Gift cards</h2>
      <form
        className="inline"
        onSubmit={(e) => {
          e.preventDefault()
          if (valid && cents !== undefined)
            void client.append(`giftcard/${card}`, 'gc.issued', { amount: cents })
        }}
      >
        <input
          className="narrow"
          data-testid="gc-code"
          value={code}
          onChange={(e) => setCode(e.target.value)}
        />
        <input
          className="narrow"
          data-testid="gc-amount"
          value={amount}
          onChange={(e) => setAmount(e.target.value)}
        />
        <button className="small" disabled={!valid || cents === undefined} data-testid="gc-issue">
          Issue / reload
        </button>
      </form>
      <p data-testid="gc-balance">
        {valid
          ? `${card}: balance ${formatCents(gc?.view.balance ?? 0)}, ${gc?.view.redemptions ?? 0} redemptions`
          : 'Enter a code.'}
      </p>
    </section>
  )
}
