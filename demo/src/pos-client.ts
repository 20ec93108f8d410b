/**
 * The register's Ledgerline client: one IndexedDB database per (store, register), so switching
 * register never mixes outboxes; a token from the relay's development issuer; the store's scope;
 * and sockets made through the network switch (see network.ts).
 *
 * The token source remembers why its last token could not be had (`tokenProblem`), because
 * the status bar must tell a refused sign-in from a head office that does not answer, and the
 * client reports both as a failed token call.
 */
import {
  type Client,
  createClient,
  type EntityState,
  type Outcome,
  type WebSocketConstructor,
} from '@ledgerline/client'
import { TENANT } from './catalog.ts'
import { DECISION_WAIT_MS } from './limits.ts'
import { SwitchedWebSocket } from './network.ts'
import { relayUrls, storeHub } from './store-hub.ts'
import schema from './schema.ts'
import { fetchDevToken, type Session, subjectOf, TokenError } from './session.ts'

export type PosClient = Client
export type { ClientStatus as PosStatus, Outcome } from '@ledgerline/client'
/** One ledger as the client folds it (confirmed, own pending, view): the demo's one name for it. */
export type PosEntity<S> = EntityState<S>

export type TokenProblem = 'refused' | 'unreachable' | null

export function openClient(session: Session): PosClient {
  // A new client has not asked for a token yet: what the last one learned is no longer news.
  setProblem(session, null)
  const own = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/sync`
  return createClient({
    // Served by a store hub: the hub, then head office (the client fails over, and back).
    url: relayUrls(storeHub(), own),
    token: createTokenSource(session),
    schema,
    tenant: TENANT,
    dbName: `ledgerline-${TENANT}-${subjectOf(session)}`,
    scope: scopeOf(session),
    // The DOM's `send` takes more than the client's Uint8Array; the shapes agree otherwise.
    WebSocket: SwitchedWebSocket as unknown as WebSocketConstructor,
  })
}

/** Everything of the register's store, and the tenant's gift cards. */
export function scopeOf(session: Session): string[] {
  return [`*/${session.store}-*`, `*/${session.store}:*`, 'giftcard/*']
}

/** Waits up to `timeoutMs` for the relay's decision on `entryId`. */
export function waitForOutcome(
  client: PosClient,
  entryId: string,
  timeoutMs = DECISION_WAIT_MS,
): Promise<Outcome> {
  return client.outcome(entryId, { waitMs: timeoutMs })
}

/** Why the last token of `session` could not be had; `null` once one came. */
export function tokenProblem(session: Session): TokenProblem {
  return problems.get(subjectOf(session)) ?? null
}

/** Calls `cb` whenever a token problem of any session changes; returns unsubscribe. */
export function onTokenProblem(cb: () => void): () => void {
  problemListeners.add(cb)
  return () => {
    problemListeners.delete(cb)
  }
}

// ---------------------------------------------------------------------------------------------

const problems = new Map<string, TokenProblem>()
const problemListeners = new Set<() => void>()

function setProblem(session: Session, problem: TokenProblem): void {
  const key = subjectOf(session)
  if ((problems.get(key) ?? null) === problem) return
  problems.set(key, problem)
  for (const l of problemListeners) l()
}

/**
 * Tokens from the development issuer, asked for at every connection: the client asks again
 * after the relay refused a token (a restarted dev relay may have a new secret), so a cached
 * token would be refused forever.
 */
function createTokenSource(session: Session): () => Promise<string> {
  return async () => {
    try {
      const { token } = await fetchDevToken(session)
      setProblem(session, null)
      return token
    } catch (error) {
      setProblem(session, error instanceof TokenError ? error.kind : 'unreachable')
      throw error
    }
  }
}
