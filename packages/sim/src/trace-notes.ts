/**
 * Trace notes: one line per frame a till sends or gets, for reading a kept trace (`keepTrace`)
 * when a seed fails: hellos and welcomes with the clientId, its high-water mark and the log's
 * identity; pushes and acks with entry ids, op tags and positions; pages with their positions
 * and cursors; errors with their kind.
 *
 * Terms: a *short id* is the first 6 hex digits of the clientId and the clientSeq (`0c75ff-3`).
 *
 * Invariants:
 * 1. A note is a function of the frame alone (deterministic), and notes never feed the trace
 *    hash (`SimScheduler.note`): runs keep their hashes whether tracing is on or off.
 * 2. A note lists at most SIM_TRACE_NOTE_ITEMS_MAX entries or results, then how many more.
 */
import type { Message } from '@ledgerline/protocol'
import { opOf } from './content.ts'
import { SIM_TRACE_NOTE_ITEMS_MAX } from './limits.ts'

/**
 * The note of `message` as `till` sent it (`sent`) or got it (`got`); undefined for pings.
 *
 * @example
 * frameNote('till-1', 'got', welcome) // 'till-1 got welcome 0c75ff high 3 log AbC…:2'
 */
export function frameNote(till: string, way: 'sent' | 'got', message: Message): string | undefined {
  const head = `${till} ${way} ${message.type}`
  switch (message.type) {
    case 'hello':
      return `${head} ${message.clientId.slice(0, 6)}`
    case 'welcome':
      return `${head} ${message.subject} high ${message.clientSeqHigh} log ${message.log.id.slice(0, 6)}:${message.log.generation}`
    case 'push':
      return `${head} #${message.batch} ${bounded(message.entries.map((e) => `${short(e.id)}(${opOf(e) ?? '-'})`))}`
    case 'ack':
      return `${head} #${message.batch}@${message.first}${message.done ? ' done' : ''} ${bounded(
        message.results.map((r) => {
          const where = 'offset' in r ? `@${r.partition}:${r.offset}v${r.version}` : ''
          const code = r.status === 'refused' || r.status === 'deferred' ? `:${r.code}` : ''
          return `${short(r.id)}=${r.status}${code}${where}`
        }),
      )}`
    case 'subscribe':
      return `${head} sub ${message.sub} from ${JSON.stringify(message.cursors)}`
    case 'entries':
      return `${head} sub ${message.sub}${message.live ? ' live' : ''} to ${JSON.stringify(message.cursors)} ${bounded(
        message.entries.map(
          (e) =>
            `${e.partition}:${e.offset} ${e.entity}v${e.version} ${short(e.id)}(${opOf(e) ?? '-'})`,
        ),
      )}`
    case 'error':
      return `${head} ${message.kind}${message.log === undefined ? '' : ` log ${message.log.id.slice(0, 6)}:${message.log.generation}`}`
    case 'ping':
    case 'pong':
      return undefined
    default:
      return head
  }
}

function short(id: string): string {
  const dash = id.lastIndexOf('-')
  return dash === 32 ? `${id.slice(0, 6)}${id.slice(dash)}` : id
}

function bounded(items: readonly string[]): string {
  const shown = items.slice(0, SIM_TRACE_NOTE_ITEMS_MAX).join(' ')
  const more = items.length - SIM_TRACE_NOTE_ITEMS_MAX
  return more > 0 ? `${shown} …+${more}` : shown
}
