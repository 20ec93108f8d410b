/**
 * The part of a Ledgerline client a CRDT binding uses, declared structurally so that
 * `@ledgerline/automerge` depends on `@ledgerline/core` only (STYLE.md "Dependency direction"):
 * `@ledgerline/client` satisfies it, and so does the in-memory fake of `@ledgerline/testkit`.
 *
 * What an implementation must guarantee:
 * 1. `append` resolves only after the entry and its outbox record are durable (guarantee 1), so
 *    an edit that was appended survives a reload and reaches the server log exactly once.
 * 2. `entries(entity)` returns every entry of the entity the client knows: confirmed ones and
 *    pending ones (its own and, when it has them, other tabs'), in any order, possibly starting
 *    from the latest snapshot instead of version 1.
 * 3. `subscribe` calls `onChange` (at least once, possibly coalesced) after the set returned by
 *    `entries` grew; the returned function stops it.
 */
import type { Data, Entry } from '@ledgerline/core'

export interface CrdtClient {
  append(
    entity: string,
    kind: string,
    data: Data,
    options?: { readonly intent?: 'fact' | undefined },
  ): Promise<unknown>
  entries(entity: string): Promise<readonly Entry[]>
  subscribe(entity: string, onChange: () => void): () => void
}
