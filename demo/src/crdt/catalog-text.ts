/**
 * The catalog's descriptions as a Yjs document, `catalog/<store>:text`: head office edits
 * them, registers show them, and concurrent edits merge character by character, which is right
 * for a paragraph two people improve at once. Names are not here: a name is one value, and two
 * names typed at once must not merge into one string, so they live in the
 * `product/<store>:<sku>` ledgers (schema.ts), where head office picks between them. Prices
 * are facts in the `price/<store>:<sku>` ledgers.
 *
 * Document layout: one top-level `Y.Text` per item, named `description:<sku>`. Top-level types
 * exist on every replica from the start, so two offices that edit the same item for the first
 * time at once merge their edits (a nested type made on both sides would keep only one of
 * them). Documents made before names moved out may still hold `name:<sku>` texts; nothing
 * reads them.
 *
 * Invariants:
 * 1. Registers show no description while the document is loading or offline before its first
 *    sync; nothing else depends on it.
 * 2. An edit touches only the characters that changed (common prefix and suffix kept), so a
 *    concurrent edit elsewhere in the same text survives.
 */
import { bindYDoc, type YDocBinding } from '@ledgerline/yjs'
import { useEffect, useState } from 'react'
import type * as Y from 'yjs'
import { usePos } from '../pos-context.ts'
import { leaseBinding, warn } from './leases.ts'

export interface CatalogText {
  /** False until the document is bound: there are no descriptions and edits are ignored. */
  readonly ready: boolean
  /** The item's description, `''` when there is none. */
  descriptionOf(sku: string): string
  setDescription(sku: string, value: string): void
}

/** The catalog text document of a store. */
export function catalogTextEntity(store: string): string {
  return `catalog/${store}:text`
}

/**
 * The signed-in store's catalog descriptions, re-rendering on every local or remote edit.
 * Until the document is bound, there are none and edits are ignored.
 *
 * @example
 * const text = useCatalogText()
 * <span>{text.descriptionOf(item.sku)}</span>
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
  descriptionOf: () => '',
  setDescription: () => {},
}

function textsOf(doc: Y.Doc): CatalogText {
  return {
    ready: true,
    descriptionOf: (sku) => doc.getText(`description:${sku}`).toString(),
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
