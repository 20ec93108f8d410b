/**
 * The part of a Ledgerline client a CRDT binding uses, declared structurally so that
 * `@ledgerline/automerge` depends on `@ledgerline/core` only (STYLE.md "Dependency direction"):
 * `@ledgerline/client` satisfies it, and so does the in-memory fake of `@ledgerline/testkit`.
 *
 * What an implementation must guarantee:
 * 1. `append` resolves only after the entry and its outbox record are durable (guarantee 1), so
 *    an edit that was appended survives a reload and reaches the server log exactly once.
 * 2. `load(entity).view` is the entity's view folded by its entity type: confirmed entries (from
 *    version 1 or from a snapshot) in version order, then the client's own pending entries. For a
 *    CRDT entity type that is the merged state as bytes, so it holds every edit the client knows,
 *    whatever snapshots the client or the relay took.
 * 3. `subscribe` calls `onChange` (at least once, possibly coalesced) after the view changed;
 *    the returned function stops it.
 * 4. `appendMany`, when present, appends its entries in order in one durable write (all or
 *    none), so the parts of one update are never half in the outbox.
 */
import type { CrdtAppender } from '@ledgerline/core'

/** `append` and `appendMany` are core's `CrdtAppender` (what a writer of parts needs). */
export interface CrdtClient extends CrdtAppender {
  load(entity: string): Promise<{ readonly view: unknown }>
  subscribe(entity: string, onChange: () => void): () => void
}
