/**
 * Always visible: whether this register is sending its sales to head office and, when it is
 * not, why (no network, head office unreachable, not authorised, the store's internet down),
 * what to do about it, the sales waiting (count and amount), the age of the oldest, and for card
 * payments taken offline the time left before they must be sent. On a store hub also the three
 * stages of this register's entries (on this device, in the store, at head office: the client's
 * `deviceEntries`, `storedEntries`, `headOffice`) and the store's sales not yet at head office
 * (this register's and the other registers' the hub holds).
 */
import { useStatus } from '@ledgerline/react'
import { useEffect, useState, useSyncExternalStore } from 'react'
import { connectionReason, reasonWords } from './connection.ts'
import { isNetworkOff, onNetworkChange } from './network.ts'
import { formatDuration, forwardTimeLeftMs } from './offline-limits.ts'
import { formatCents } from './money.ts'
import { onTokenProblem, type PosStatus, tokenProblem } from './pos-client.ts'
import { usePos } from './pos-context.ts'
import { pendingSales, storeLayerSales } from './store-data.ts'
import { onStoreHub, storeHub } from './store-hub.ts'

export function StatusBar() {
  const { data, limits, session, openedAt, signInAgain } = usePos()
  const status = useStatus<PosStatus>()
  const now = useNow(1000)
  const networkOff = useSyncExternalStore(onNetworkChange, isNetworkOff)
  const token = useSyncExternalStore(onTokenProblem, () => tokenProblem(session))
  const reason = connectionReason({ status, networkOff, token, sinceOpenMs: now - openedAt })
  const words = reasonWords(reason)
  const pending = pendingSales(data)
  const outbox = status?.outboxEntries ?? 0
  const otherChanges = outbox > 0 && pending.count === 0
  const left = forwardTimeLeftMs(limits, pending.card.oldestAt, now)
  // Also while the hub is down: the store's registers still want the three stages.
  const hub = useSyncExternalStore(onStoreHub, storeHub)
  const onHub = hub.isHub || status?.relay?.role === 'hub'
  const others = storeLayerSales(data)
  return (
    <section
      className={`statusbar ${words.badge}`}
      data-testid="status-bar"
      data-reason={reason._tag}
      aria-live="polite"
    >
      <span className="status-dot" aria-hidden="true" />
      <strong data-testid="status-connection">{words.badge}</strong>
      <span className="status-reason" data-testid="status-reason">
        <b>{words.title}.</b> {words.detail}
      </span>
      {reason._tag === 'not_authorised' ? (
        <button className="small primary" data-testid="status-sign-in" onClick={signInAgain}>
          Sign in again
        </button>
      ) : null}
      <span className="status-facts">
        <span>
          <span data-testid="status-pending-count">{pending.count}</span> sale
          {pending.count === 1 ? '' : 's'} waiting to be sent ·{' '}
          <span data-testid="status-pending-amount">{formatCents(pending.amount)}</span>
        </span>
        <span data-testid="status-outbox" data-outbox={outbox}>
          {outbox === 0
            ? 'everything sent'
            : otherChanges
              ? 'other changes waiting (counts, shifts, notes)'
              : ''}
        </span>
        {onHub ? (
          <span
            className="status-stages"
            data-testid="status-stages"
            data-relay={status?.relay?.role ?? 'none'}
          >
            <span>
              on this device <b data-testid="status-device">{status?.deviceEntries ?? 0}</b>
            </span>
            <span>
              in the store <b data-testid="status-stored">{status?.storedEntries ?? 0}</b>
            </span>
            <span>
              head office{' '}
              <b data-testid="status-head-office" data-head-office={status?.headOffice}>
                {status?.headOffice === 'reachable'
                  ? 'reached'
                  : status?.headOffice === 'unreachable'
                    ? 'not reached'
                    : 'unknown'}
              </b>
            </span>
            <span data-testid="status-store-unsent" data-count={pending.count + others.count}>
              store not at head office: {pending.count + others.count} sale
              {pending.count + others.count === 1 ? '' : 's'} ·{' '}
              {formatCents(pending.amount + others.amount)}
            </span>
          </span>
        ) : null}
        {pending.oldestAt === null ? null : (
          <span data-testid="status-oldest">
            oldest waiting {formatDuration(now - pending.oldestAt)}
          </span>
        )}
        {left === undefined ? null : (
          <span data-testid="status-deadline" className={left < 3_600_000 ? 'warn' : ''}>
            offline cards must reach head office within {formatDuration(left)}
          </span>
        )}
        {(status?.correctionsUnseen ?? 0) > 0 ? (
          <span className="pill" data-testid="status-corrections">
            {status?.correctionsUnseen} new in the Inbox
          </span>
        ) : null}
      </span>
    </section>
  )
}

export function useNow(everyMs: number): number {
  const [now, setNow] = useState(Date.now)
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), everyMs)
    return () => clearInterval(t)
  }, [everyMs])
  return now
}
