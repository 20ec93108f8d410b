/**
 * How one relay learns of commits made by the other relays on the same PostgreSQL log: LISTEN
 * on one channel that every append transaction NOTIFYs once (never per row), and a poll of the
 * partition heads as the fallback.
 *
 *   relay A: append tx ── pg_notify('ledgerline_commit', '<A> 3:120 7:88') ── COMMIT
 *                                  │ (delivered at commit, in commit order)
 *   relay B: LISTEN ──► heads 3,7 advanced? ──► onChange([3, 7])
 *            every PG_POLL_INTERVAL_MS: select heads ──► any advanced? ──► onChange([...])
 *
 * Terms: the *known heads* are the partition heads this relay has reported (its own commits
 * included); a partition is reported when its head in the database passes its known head.
 *
 * Invariants:
 * 1. Every commit is reported within about one poll interval, even when its notification was
 *    lost (LISTEN connection dropped, relay restarted, queue overflow): polling reads the heads.
 * 2. A partition is reported only when its head advanced past the known head, so a relay's own
 *    commits (reported by the store at once) and repeated notifications cause no extra reads.
 * 3. Known heads only grow.
 * 4. The feed never throws into the store: a failed LISTEN is retried after
 *    `PG_LISTEN_RETRY_MS`, a failed poll waits for the next tick.
 */
import type { Notification, Pool, PoolClient } from 'pg'
import { PG_LISTEN_RETRY_MS } from './postgres-limits.ts'

/** The one channel every relay of a log NOTIFYs and LISTENs on. */
export const PG_COMMIT_CHANNEL = 'ledgerline_commit'

export interface CommitFeed {
  /** Records heads this relay committed itself, so they are not reported again. */
  advance(heads: ReadonlyMap<number, number>): void
  /** Reads the heads now and reports what advanced (also used by tests). */
  poll(): Promise<void>
  close(): Promise<void>
}

/**
 * Starts listening and polling.
 *
 * @example
 * const feed = createCommitFeed({ pool, selfId, partitions: 16, pollIntervalMs: 1000,
 *   initialHeads, onChange: (ps) => notifyListeners(ps) })
 */
export function createCommitFeed(options: {
  readonly pool: Pool
  /** This store's id; its own notifications are skipped. */
  readonly selfId: string
  readonly partitions: number
  readonly pollIntervalMs: number
  readonly initialHeads: readonly number[]
  /** False: poll only (engines without LISTEN). */
  readonly listen: boolean
  readonly onChange: (partitions: readonly number[]) => void
  /** Called for every notification of another relay's commit (whatever it advanced). */
  readonly onOtherRelay?: (() => void) | undefined
}): CommitFeed {
  const known = Array.from({ length: options.partitions }, (_, p) => options.initialHeads[p] ?? 0)
  let closed = false
  let listener: PoolClient | undefined
  let retry: ReturnType<typeof setTimeout> | undefined
  let polling: Promise<void> | undefined

  const report = (heads: Iterable<[number, number]>) => {
    const changed: number[] = []
    for (const [partition, head] of heads) {
      if (partition < 0 || partition >= known.length) continue
      if (head > (known[partition] as number)) {
        known[partition] = head
        changed.push(partition)
      }
    }
    if (changed.length > 0 && !closed) options.onChange(changed.sort((a, b) => a - b))
  }

  const onNotification = (message: Notification) => {
    if (message.channel !== PG_COMMIT_CHANNEL || message.payload === undefined) return
    const parsed = parsePayload(message.payload)
    if (parsed === undefined || parsed.from === options.selfId) return
    options.onOtherRelay?.()
    // A payload without heads (too many partitions for one NOTIFY): read them.
    if (parsed.heads.length === 0) void poll()
    else report(parsed.heads)
  }

  const poll = (): Promise<void> => {
    if (closed) return Promise.resolve()
    // One poll at a time: a slow database must not pile up head reads.
    polling ??= options.pool
      .query<{ partition: number; head: number }>(
        'select partition, head from ledgerline_partition_heads',
      )
      .then(
        (result) => report(result.rows.map((r) => [r.partition, Number(r.head)])),
        () => undefined,
      )
      .finally(() => {
        polling = undefined
      })
    return polling
  }

  const listen = async (): Promise<void> => {
    retry = undefined
    if (closed) return
    let client: PoolClient | undefined
    try {
      client = await options.pool.connect()
      const onError = () => {
        // The connection is gone: drop it, listen again later, and poll meanwhile.
        client?.removeListener('notification', onNotification)
        client?.release(true)
        if (listener === client) listener = undefined
        scheduleListen()
      }
      client.on('error', onError)
      client.on('notification', onNotification)
      await client.query(`listen ${PG_COMMIT_CHANNEL}`)
      if (closed) {
        client.release(true)
        return
      }
      listener = client
      // Commits made while nobody listened are found by reading the heads once now.
      void poll()
    } catch {
      client?.release(true)
      scheduleListen()
    }
  }

  const scheduleListen = () => {
    if (closed || retry !== undefined) return
    retry = setTimeout(() => void listen(), PG_LISTEN_RETRY_MS)
    retry.unref()
  }

  const timer = setInterval(() => void poll(), options.pollIntervalMs)
  timer.unref()
  if (options.listen) void listen()

  return {
    advance(heads) {
      for (const [partition, head] of heads) {
        if (head > (known[partition] ?? Infinity)) known[partition] = head
      }
    },
    poll,
    async close() {
      closed = true
      clearInterval(timer)
      if (retry !== undefined) clearTimeout(retry)
      await polling
      const client = listener
      listener = undefined
      if (client !== undefined) {
        client.removeListener('notification', onNotification)
        try {
          await client.query(`unlisten ${PG_COMMIT_CHANNEL}`)
          client.release()
        } catch {
          client.release(true)
        }
      }
    },
  }
}

/** The payload of one commit's NOTIFY: `<store id> <partition>:<head> …`. */
export function encodeCommitPayload(from: string, heads: ReadonlyMap<number, number>): string {
  const parts = [from]
  for (const [partition, head] of [...heads].sort((a, b) => a[0] - b[0])) {
    parts.push(`${partition}:${head}`)
  }
  // 1024 partitions × at most 1+4+1+16 characters stays below NOTIFY's 8000-byte payload only
  // for a few hundred partitions; beyond that the heads are dropped and polling reports them.
  const payload = parts.join(' ')
  return payload.length <= 7_900 ? payload : from
}

export function parsePayload(
  payload: string,
): { from: string; heads: [number, number][] } | undefined {
  const [from, ...rest] = payload.split(' ')
  if (from === undefined || from === '') return undefined
  const heads: [number, number][] = []
  for (const part of rest) {
    const [p, h] = part.split(':')
    const partition = Number(p)
    const head = Number(h)
    if (Number.isSafeInteger(partition) && Number.isSafeInteger(head)) heads.push([partition, head])
  }
  return { from, heads }
}
