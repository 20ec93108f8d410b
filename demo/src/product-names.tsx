/**
 * Product names at head office: each item's name is one value in its `product/<store>:<sku>`
 * ledger. Renaming appends `product.renamed` naming the entry it replaces (`basedOn`); two
 * renames made at once (two offline offices) both stay in the ledger, the relay marks the
 * conflict, and head office picks one (`product.name_chosen`) from the Inbox or here. The
 * history panel lists the ledger's entries, confirmed and pending, in plain words.
 */
import type { Entry } from '@ledgerline/core'
import { useEffect, useState } from 'react'
import { CATALOG, type CatalogItem } from './catalog.ts'
import { registerName } from './inbox.ts'
import { HISTORY_ENTRIES_MAX, PRODUCT_NAME_CHARS_MAX } from './limits.ts'
import { usePos } from './pos-context.ts'
import { productName } from './store-data.ts'

export function ProductNamesEditor() {
  const [history, setHistory] = useState<string | undefined>()
  return (
    <section className="card">
      <h2>Names on registers and receipts</h2>
      <p className="muted">
        A name is one value: if two offices rename an item at once, both names are kept in its
        history and you pick one.
      </p>
      <div className="table-scroll">
        <table className="table">
          <thead>
            <tr>
              <th>Item</th>
              <th>Name</th>
              <th>Rename</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {CATALOG.map((item) => (
              <NameRow
                key={item.sku}
                item={item}
                open={history === item.sku}
                onHistory={() => setHistory(history === item.sku ? undefined : item.sku)}
              />
            ))}
          </tbody>
        </table>
      </div>
    </section>
  )
}

function NameRow(props: { item: CatalogItem; open: boolean; onHistory: () => void }) {
  const { client, session, data } = usePos()
  const { item } = props
  const [text, setText] = useState('')
  const snap = data.products.get(item.sku)
  const entity = `product/${session.store}:${item.sku}`
  const name = text.trim()
  const ok = name.length > 0 && name.length <= PRODUCT_NAME_CHARS_MAX
  const candidates = snap?.view.candidates ?? []
  return (
    <>
      <tr data-testid={`name-row-${item.sku}`}>
        <td className="muted">{item.sku}</td>
        <td data-testid={`name-current-${item.sku}`}>
          {productName(data, item)}
          {candidates.length > 0 ? (
            <span className="state-pill due" data-testid={`name-conflict-${item.sku}`}>
              {candidates.length} names: pick one
            </span>
          ) : null}
        </td>
        <td>
          <form
            className="inline"
            onSubmit={(e) => {
              e.preventDefault()
              if (!ok) return
              void client
                .append(entity, 'product.renamed', {
                  sku: item.sku,
                  name,
                  // The rename replaces the name this office sees; a rename made elsewhere
                  // meanwhile is then a second name, not an overwrite.
                  basedOn: snap?.view.head ?? '',
                  by: session.register,
                })
                .then(() => setText(''))
            }}
          >
            <input
              data-testid={`name-input-${item.sku}`}
              placeholder={productName(data, item)}
              maxLength={PRODUCT_NAME_CHARS_MAX}
              value={text}
              onChange={(e) => setText(e.target.value)}
            />
            <button className="small" disabled={!ok} data-testid={`name-save-${item.sku}`}>
              Rename
            </button>
          </form>
        </td>
        <td>
          <button
            className="small ghost"
            data-testid={`name-history-${item.sku}`}
            onClick={props.onHistory}
          >
            {props.open ? 'Hide history' : 'History'}
          </button>
        </td>
      </tr>
      {props.open ? (
        <tr>
          <td colSpan={4}>
            <NameHistory entity={entity} />
          </td>
        </tr>
      ) : null}
    </>
  )
}

/** Buttons that settle a product's name: one per name given (head office only). */
export function PickName(props: {
  sku: string
  names: readonly { readonly name: string; readonly entry: string }[]
}) {
  const { client, session } = usePos()
  if (session.register !== 'hq') {
    return <p className="muted small-print">Head office picks the name.</p>
  }
  return (
    <div className="row">
      {props.names.map((n) => (
        <button
          key={n.entry || n.name}
          className="small"
          data-testid="pick-name"
          onClick={() =>
            void client.append(`product/${session.store}:${props.sku}`, 'product.name_chosen', {
              sku: props.sku,
              name: n.name,
              chosen: n.entry,
              by: session.register,
            })
          }
        >
          Use “{n.name}”
        </button>
      ))}
    </div>
  )
}

/** The product ledger's entries, newest first, in plain words. */
function NameHistory(props: { entity: string }) {
  const { client, data } = usePos()
  const [items, setItems] = useState<readonly { entry: Entry; pending: boolean }[] | undefined>()
  // Read again whenever the store's data changes (a rename, an ack, a choice).
  useEffect(() => {
    let live = true
    void client.entries(props.entity).then((list) => {
      if (!live) return
      setItems(
        list
          .map((i) => ({ entry: i.entry, pending: i._tag === 'pending' }))
          .reverse()
          .slice(0, HISTORY_ENTRIES_MAX),
      )
    })
    return () => {
      live = false
    }
  }, [client, props.entity, data])
  if (items === undefined) return <p className="muted">Reading the history…</p>
  if (items.length === 0) return <p className="muted">Never renamed: the built-in name applies.</p>
  return (
    <ol className="history" data-testid="name-history">
      {items.map(({ entry, pending }) => (
        <li key={entry.id} data-testid="name-history-entry" data-kind={entry.kind}>
          <span>{historyWords(entry)}</span>
          <span className="muted small-print">
            {new Date(entry.occurredAt).toLocaleString()}
            {pending ? ' · on this device, not yet at head office' : ''}
          </span>
        </li>
      ))}
    </ol>
  )
}

function historyWords(e: Entry): string {
  const d = e.data as { name?: unknown; by?: unknown; names?: unknown }
  const who = typeof d.by === 'string' ? registerName(d.by) : 'someone'
  switch (e.kind) {
    case 'product.renamed':
      return `${who} renamed it “${String(d.name)}”`
    case 'product.name_conflict':
      return `Two names met: ${Array.isArray(d.names) ? d.names.map((n) => `“${String(n) || 'the built-in name'}”`).join(' and ') : ''}; head office to pick`
    case 'product.name_chosen':
      return `${who} chose “${String(d.name)}”`
    default:
      return 'Another change'
  }
}
