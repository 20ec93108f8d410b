/**
 * The catalog's texts (item names and descriptions) as a Yjs document, `catalog/<store>:text`:
 * head office edits them, registers show them, and concurrent edits merge character by
 * character. Prices are not here: they are facts in the `price/<store>:<sku>` ledgers.
 *
 * Document layout: one top-level `Y.Text` per field, named `name:<sku>` and `description:<sku>`.
 * Top-level types exist on every replica from the start, so two offices that edit the same item
 * for the first time at once merge their edits (a nested type made on both sides would keep
 * only one of them).
 *
 * Invariants:
 * 1. An empty name means the catalog's built-in name (catalog.ts); registers fall back to it
 *    while the document is loading, offline before its first sync, or when the text is cleared.
 * 2. An edit touches only the characters that changed (common prefix and suffix kept), so a
 *    concurrent edit elsewhere in the same text survives.
 */
import { bindYDoc, type YDocBinding } from '@ledgerline/yjs'
import { useEffect, useState } from 'react'
import type * as Y from 'yjs'
import type { CatalogItem } from '../catalog.ts'
import { usePos } from '../pos-context.ts'
import { leaseBinding, warn } from './leases.ts'

export interface CatalogText {
  /** False until the document is bound: names are the built-in ones and edits are ignored. */
  readonly ready: boolean
  /** The item's name: head office's text, or the built-in name (invariant 1). */
  nameOf(item: CatalogItem): string
  /** The item's description, `''` when there is none. */
  descriptionOf(sku: string): string
  /** Head office's own name text (empty when the built-in name applies). */
  nameText(sku: string): string
  setName(sku: string, value: string): void
  setDescription(sku: string, value: string): void
}

/** The catalog text document of a store. */
export function catalogTextEntity(store: string): string {
  return `catalog/${store}:text`
}

/**
 * The signed-in store's catalog texts, re-rendering on every local or remote edit. Until the
 * document is bound, every name is the built-in one and edits are ignored.
 *
 * @example
 * const text = useCatalogText()
 * <span>{text.nameOf(item)}</span>
 */
export function useCatalogText(): CatalogText {
  const doc = useYDoc(catalogTextEntity(usePos().session.store))
  return doc === undefined ? BUILT_IN : textsOf(doc)
}

/**
 * The live `Y.Doc` of `entity`, bound through the register's client; `undefined` while it
 * loads. Re-renders the component after every update of the document.
 */
export function useYDoc(entity: string): Y.Doc | undefined {
  const { client } = usePos()
  const [doc, setDoc] = useState<Y.Doc | undefined>()
  const [, setVersion] = useState(0)
  useEffect(() => {
    let live = true
    let stop = () => {}
    const lease = leaseBinding<YDocBinding>(client, entity, () =>
      bindYDoc(client, entity, { onError: warn }),
    )
    lease.ready.then((binding) => {
      if (!live) return
      const bump = () => setVersion((v) => v + 1)
      binding.doc.on('update', bump)
      stop = () => binding.doc.off('update', bump)
      setDoc(binding.doc)
    }, warn)
    return () => {
      live = false
      stop()
      lease.release()
      setDoc(undefined)
    }
  }, [client, entity])
  return doc
}

// ---------------------------------------------------------------------------------------------

const BUILT_IN: CatalogText = {
  ready: false,
  nameOf: (item) => item.name,
  descriptionOf: () => '',
  nameText: () => '',
  setName: () => {},
  setDescription: () => {},
}

function textsOf(doc: Y.Doc): CatalogText {
  return {
    ready: true,
    nameOf: (item) => doc.getText(`name:${item.sku}`).toString().trim() || item.name,
    descriptionOf: (sku) => doc.getText(`description:${sku}`).toString(),
    nameText: (sku) => doc.getText(`name:${sku}`).toString(),
    setName: (sku, value) => replaceText(doc.getText(`name:${sku}`), value),
    setDescription: (sku, value) => replaceText(doc.getText(`description:${sku}`), value),
  }
}

/** Turns `text` into `value` by deleting and inserting only the middle that differs. */
function replaceText(text: Y.Text, value: string): void {
  const old = text.toString()
  if (old === value) return
  let start = 0
  const shorter = Math.min(old.length, value.length)
  while (start < shorter && old[start] === value[start]) start++
  let end = 0
  while (end < shorter - start && old[old.length - 1 - end] === value[value.length - 1 - end]) {
    end++
  }
  text.doc?.transact(() => {
    text.delete(start, old.length - start - end)
    text.insert(start, value.slice(start, value.length - end))
  })
}
