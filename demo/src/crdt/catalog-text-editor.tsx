/**
 * Head office's editor of the catalog descriptions: typed straight into the shared Yjs
 * document, so registers see the change as it is typed and edits made elsewhere at the same
 * time merge. Names are edited beside it (product-names.tsx), as one value each.
 */
import { CATALOG } from '../catalog.ts'
import { usePos } from '../pos-context.ts'
import { productName } from '../store-data.ts'
import { useCatalogText } from './catalog-text.ts'

export function CatalogTextEditor() {
  const { data } = usePos()
  const text = useCatalogText()
  return (
    <section className="card">
      <h2>Descriptions</h2>
      <p className="muted">
        Shared with every register of this store as you type; edits made elsewhere at the same time
        merge.
      </p>
      <div className="table-scroll">
        <table className="table">
          <thead>
            <tr>
              <th>Item</th>
              <th>Description</th>
            </tr>
          </thead>
          <tbody>
            {CATALOG.map((item) => (
              <tr key={item.sku}>
                <td>{productName(data, item)}</td>
                <td>
                  <input
                    className="wide"
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
      </div>
    </section>
  )
}
