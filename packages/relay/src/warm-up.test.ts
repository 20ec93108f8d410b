// Goal: the relay's warm-up (`warm-up.ts`) runs one push through the session's push path to an
// ack, and nothing of it reaches the relay's log, commit queue or metrics (invariant 1). Method:
// a context whose log, commit queue and metrics record every call; the warm-up must report the
// ack frame its push got and leave all three untouched.
import { pino } from 'pino'
import { describe, expect, it } from 'vitest'
import type { CommitQueue } from './commit-queue.ts'
import { RELAY_LIMITS_DEFAULT } from './limits.ts'
import type { LogStore } from './log-store.ts'
import type { RelayMetrics } from './metrics.ts'
import type { SessionContext } from './session.ts'
import { warmPushPath } from './warm-up.ts'

function recording<T extends object>(calls: string[], name: string): T {
  return new Proxy({} as T, {
    get: (_target, key) => {
      return (..._args: unknown[]) => {
        calls.push(`${name}.${String(key)}`)
        return undefined
      }
    },
  })
}

describe('warmPushPath', () => {
  it('acks one push on a queue and a store of its own; the relay log, queue and metrics see nothing', async () => {
    const calls: string[] = []
    const context = {
      store: recording<LogStore>(calls, 'store'),
      commits: recording<CommitQueue>(calls, 'commits'),
      metrics: recording<RelayMetrics>(calls, 'metrics'),
      limits: RELAY_LIMITS_DEFAULT,
      logger: pino({ level: 'silent' }),
    } as unknown as SessionContext
    expect(await warmPushPath(context)).toEqual({ _tag: 'warmed', ackFrames: 1 })
    expect(calls).toEqual([])
  })

  it('reports a failure as a colder start, never throws', async () => {
    // Limits that refuse every push: the warm-up's push is refused before the queue.
    const context = {
      store: recording<LogStore>([], 'store'),
      commits: recording<CommitQueue>([], 'commits'),
      metrics: recording<RelayMetrics>([], 'metrics'),
      limits: { ...RELAY_LIMITS_DEFAULT, pushEntriesMax: 0 },
      logger: pino({ level: 'silent' }),
    } as unknown as SessionContext
    const warm = await warmPushPath(context)
    expect(warm._tag).toBe('cold')
    expect(warm).toMatchObject({ reason: expect.stringContaining('too_large') })
  })
})
