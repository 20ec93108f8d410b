/**
 * Always visible: online / offline / syncing, the sales not yet at head office (count and
 * amount), the age of the oldest one, and the time left before the offline deadline.
 */
import { useStatus } from '@ledgerline/react'
import { useEffect, useState } from 'react'
import { formatDuration, forwardTimeLeftMs } from './limits.ts'
import { formatCents } from './money.ts'
import type { PosStatus } from './pos-client.ts'
import { usePos } from './pos-context.ts'
import { pendingSales } from './store-data.ts'

export function StatusBar() {
  const { data, limits } = usePos()
  const status = useStatus<PosStatus>()
  const now = useNow(1000)
  const pending = pendingSales(data)
  const online = status?.online === true
  const outbox = status?.outboxEntries ?? 0
  const connection = !online
    ? 'offline'
    : outbox > 0 || status?.syncing === true
      ? 'syncing'
      : 'online'
  const left = forwardTimeLeftMs(limits, pending.oldestAt, now)
  return (
    <section className={`statusbar ${connection}`} data-testid="status-bar" aria-live="polite">
      <span className="status-dot" aria-hidden="true" />
      <strong data-testid="status-connection">{connection}</strong>
      <span>
        <span data-testid="status-pending-count">{pending.count}</span> sale
        {pending.count === 1 ? '' : 's'} pending ·{' '}
        <span data-testid="status-pending-amount">{formatCents(pending.amount)}</span>
      </span>
      <span data-testid="status-outbox">{outbox} in outbox</span>
      <span data-testid="status-oldest">
        oldest unsynced: {pending.oldestAt === null ? '—' : formatDuration(now - pending.oldestAt)}
      </span>
      <span
        data-testid="status-deadline"
        className={left !== undefined && left < 3_600_000 ? 'warn' : ''}
      >
        offline limit in: {left === undefined ? '—' : formatDuration(left)}
      </span>
      {(status?.correctionsUnseen ?? 0) > 0 ? (
        <span className="pill" data-testid="status-corrections">
          {status?.correctionsUnseen} new correction{status?.correctionsUnseen === 1 ? '' : 's'}
        </span>
      ) : null}
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
