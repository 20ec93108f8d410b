// Relay messages of protocol 2 for scripted relays in unit tests: a `welcome` with every field
// the protocol asks for (the relay's limits at the protocol's maxima unless a test lowers them)
// and an `ack` in one part unless a test splits it.
import type { AckMessage, AckResult, WelcomeMessage } from '@ledgerline/protocol'
import {
  ENTRY_DATA_BYTES_MAX,
  FRAME_BYTES_MAX,
  PROTOCOL_VERSION,
  PUSH_ENTRIES_MAX,
  PUSH_IN_FLIGHT_MAX,
} from '@ledgerline/protocol'

/** The log identity scripted relays use unless a test changes it. */
export const LOG = { id: 'test-log-0123456789abcd', generation: 1 } as const

/** A protocol-3 `welcome` from head office for tenant `t1`, everything readable and writable. */
export function welcomeMessage(
  patch: Partial<Omit<WelcomeMessage, 'type' | 'limits'>> & {
    readonly limits?: Partial<WelcomeMessage['limits']> | undefined
  } = {},
): WelcomeMessage {
  const { limits, ...rest } = patch
  return {
    type: 'welcome',
    protocol: PROTOCOL_VERSION,
    tenant: 't1',
    subject: 'till',
    grants: { read: ['*'], write: ['*'] },
    role: 'head_office',
    log: LOG,
    partitions: 4,
    clientSeqHigh: 0,
    serverTime: 1,
    expiresAt: 3_600_001,
    ...rest,
    limits: {
      pushEntriesMax: PUSH_ENTRIES_MAX,
      pushBytesMax: FRAME_BYTES_MAX,
      entryDataBytesMax: ENTRY_DATA_BYTES_MAX,
      pushInFlightMax: PUSH_IN_FLIGHT_MAX,
      ...limits,
    },
  }
}

/** An `ack` part: `results` answer the push's entries from index `first` on. */
export function ackMessage(
  batch: number,
  results: readonly AckResult[],
  first = 0,
  done = true,
): AckMessage {
  return { type: 'ack', batch, first, results, done }
}
