/**
 * Shift handover notes as an Automerge document, `handover/<store>:notes`: any register of the
 * store adds a note (offline too), and every register sees every note once they are back online.
 *
 * Document layout: the root map holds one note per key, the key being the note's id. Each note
 * is a new key, so notes added on two offline registers both survive the merge (two registers
 * that each created a `notes` list would keep only one list).
 *
 * Automerge's WASM: `@ledgerline/automerge` imports `@automerge/automerge/slim`, so the app
 * loads the WASM once, as an asset Vite emits (and the service worker caches with the app
 * shell), before the first binding.
 */
import { type AutomergeHandle, bindAutomerge } from '@ledgerline/automerge'
import { initializeWasm, isWasmInitialized } from '@automerge/automerge/slim'
import wasmUrl from '@automerge/automerge/automerge.wasm?url'
import { useEffect, useState } from 'react'
import { usePos } from '../pos-context.ts'
import type { Session } from '../session.ts'
import { leaseBinding, warn } from './leases.ts'

export interface HandoverNote {
  readonly author: string
  readonly text: string
  /** When it was written, ms since the epoch (the register's clock). */
  readonly at: number
}

/** The document: notes by id. */
export type HandoverDoc = Record<string, HandoverNote>

export interface HandoverNotes {
  /** Every note, oldest first; `undefined` while the document loads. */
  readonly notes: readonly (HandoverNote & { readonly id: string })[] | undefined
  /** Adds a note by this register; it is in the outbox within the binding's coalesce delay. */
  add(text: string): void
}

/** The handover notes document of a store. */
export function handoverEntity(store: string): string {
  return `handover/${store}:notes`
}

/**
 * The signed-in store's handover notes, re-rendering on every local or remote change.
 *
 * @example
 * const { notes, add } = useHandoverNotes()
 * add('Till 2 drawer sticks')
 */
export function useHandoverNotes(): HandoverNotes {
  const { client, session } = usePos()
  const entity = handoverEntity(session.store)
  const [handle, setHandle] = useState<AutomergeHandle<HandoverDoc> | undefined>()
  const [, setVersion] = useState(0)
  useEffect(() => {
    let live = true
    let stop = () => {}
    const lease = leaseBinding<AutomergeHandle<HandoverDoc>>(client, entity, async () => {
      await automergeReady()
      return bindAutomerge<HandoverDoc>(client, entity, { onError: warn })
    })
    lease.ready.then((h) => {
      if (!live) return
      stop = h.subscribe(() => setVersion((v) => v + 1))
      setHandle(h)
    }, warn)
    return () => {
      live = false
      stop()
      lease.release()
      setHandle(undefined)
    }
  }, [client, entity])
  return {
    notes: handle === undefined ? undefined : sortedNotes(handle.doc()),
    add(text) {
      const trimmed = text.trim()
      if (handle === undefined || trimmed === '') return
      const at = Date.now()
      const id = `${at.toString(36)}-${session.store}-${session.register}-${randomSuffix()}`
      handle.change((d) => {
        d[id] = { author: authorOf(session), text: trimmed, at }
      })
    },
  }
}

/** Loads Automerge's WASM once per page. */
export function automergeReady(): Promise<void> {
  wasm ??= isWasmInitialized() ? Promise.resolve() : initializeWasm(wasmUrl)
  return wasm
}

// ---------------------------------------------------------------------------------------------

let wasm: Promise<void> | undefined

function sortedNotes(doc: HandoverDoc): (HandoverNote & { readonly id: string })[] {
  return Object.entries(doc)
    .map(([id, note]) => ({ id, author: note.author, text: note.text, at: note.at }))
    .sort((a, b) => a.at - b.at || (a.id < b.id ? -1 : 1))
}

function authorOf(session: Session): string {
  return session.register === 'hq' ? 'Head office' : `Register ${session.register.slice(1)}`
}

function randomSuffix(): string {
  return crypto.getRandomValues(new Uint32Array(1))[0]?.toString(36) ?? '0'
}
