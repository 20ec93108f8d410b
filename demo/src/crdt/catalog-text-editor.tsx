/**
 * Head office's editor of the catalog texts: each item's name and description, typed straight
 * into the shared Yjs document, so registers see the change as it is typed. An empty name puts
 * the built-in name back.
 */
import { CATALOG } from '../catalog.ts'
import { useCatalogText } from './catalog-text.ts'

export function CatalogTextEditor() {
  const text = useCatalogText()
  return (
    <section className="card">
      <h2>Catalog names and descriptions</h2>
      <p className="muted">
        Shared with every register of this store as you type; edits made elsewhere at the same time
        merge. Prices stay above, as ledger entries.
      </p>
      <table className="table">
        <thead>
          <tr>
            <th>Item</th>
            <th>Name on registers</th>
            <th>Description</th>
          </tr>
        </thead>
        <tbody>
          {CATALOG.map((item) => (
            <tr key={item.sku}>
              <td className="muted">{item.sku}</td>
              <td>
                <input
                  data-testid={`catalog-name-${item.sku}`}
                  placeholder={item.name}
                  disabled={!text.ready}
                  value={text.nameText(item.sku)}
                  onChange={(e) => text.setName(item.sku, e.target.value)}
                />
              </td>
              <td>
                <input
                  data-testid={`catalog-description-${item.sku}`}
                  disabled={!text.ready}
                  value={text.descriptionOf(item.sku)}
                  onChange={(e) => text.setDescription(item.sku, e.target.value)}
                />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  )
}
