/**
 * The register's Ledgerline client: one IndexedDB database per (store, register), so switching
 * register never mixes outboxes; a token from the relay's development issuer; the store's scope;
 * and sockets made through the network switch (see network.ts).
 */
import {
  type Client,
  createClient,
  type Outcome,
  type WebSocketConstructor,
} from '@ledgerline/client'
import { TENANT } from './catalog.ts'
import { SwitchedWebSocket } from './network.ts'
import schema from './schema.ts'
import { fetchDevToken, type Session, subjectOf } from './session.ts'

export type PosClient = Client
export type { ClientStatus as PosStatus, Outcome } from '@ledgerline/client'

export function openClient(session: Session): PosClient {
  const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/sync`
  return createClient({
    url,
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
  timeoutMs = 10_000,
): Promise<Outcome> {
  return client.outcome(entryId, { waitMs: timeoutMs })
}

/**
 * Tokens from the development issuer, asked for at every connection: the client asks again
 * after the relay refused a token (a restarted dev relay may have a new secret), so a cached
 * token would be refused forever.
 */
function createTokenSource(session: Session): () => Promise<string> {
  return async () => (await fetchDevToken(session)).token
}
