// Goal: the SQLite writer thread (`writer: 'worker'`) loses nothing committed when it dies, and
// its death is a typed store failure told once, after which every append fails typed; the
// queue to it is bounded. Method: a store whose worker exits inside its third write
// transaction (rows written, no COMMIT), then a reopen of the file; a store whose worker is
// terminated while appends stream; 65 writes sent at once to a thread that allows 64. And the
// thread's write path runs once before the store is returned (so before a relay answers
// /healthz), not in the first push after a restart: the worker's replies, watched from its
// start, show the rehearsal, and the log shows nothing of it.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Worker } from 'node:worker_threads'
import { pino } from 'pino'
import { afterEach, describe, expect, it } from 'vitest'
import { defineEntity, defineSchema } from '@ledgerline/core'
import type { Entry } from '@ledgerline/core'
import { isLogStoreError } from '@ledgerline/log'
import type { AppendResult } from '@ledgerline/log'
import { SQLITE_WRITER_REQUESTS_MAX } from './limits.ts'
import { createRelay } from './relay.ts'
import { RelayError } from './relay-error.ts'
import { createSqliteStore } from './sqlite-store.ts'
import { startWriterThread } from './sqlite-writer-thread.ts'

const dirs: string[] = []
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})

function tempFile(): string {
  const dir = mkdtempSync(join(tmpdir(), 'll-sqlite-worker-'))
  dirs.push(dir)
  return join(dir, 'log.sqlite')
}

const CLIENT = 'cd'.repeat(16)

function entry(seq: number): Entry {
  return {
    id: `${CLIENT}-${seq}`,
    tenant: 'acme',
    entity: `note/n${seq % 3}`,
    kind: 'note.written',
    data: { seq },
    intent: 'fact',
    clientId: CLIENT,
    clientSeq: seq,
    hlc: `${String(1_700_000_000_000 + seq).padStart(15, '0')}:00000:${CLIENT}`,
    occurredAt: 1_700_000_000_000 + seq,
  }
}

describe('SQLite writer thread', () => {
  it('rehearses before the store is returned: a plan written and rolled back, then one commit, in the thread; nothing of it kept', async () => {
    const file = tempFile()
    const schema = defineSchema(
      defineEntity<{ n: number }>({
        type: 'note',
        initial: { n: 0 },
        reduce: (s) => ({ n: s.n + 1 }),
      }),
    )
    const replies: string[] = []
    const store = await createSqliteStore({
      file,
      schema,
      writer: 'worker',
      writerThread: {
        onWorker: (worker) =>
          worker.on('message', (m: { type: string; rolledBack?: boolean }) =>
            replies.push(m.type === 'rehearsed' ? `rehearsed:${m.rolledBack}` : m.type),
          ),
      },
    })
    try {
      // The thread's first write transaction and first COMMIT happened during the open.
      expect(replies).toEqual(['rehearsed:true'])
      expect((await store.partitionHeads()).every((h) => h === 0)).toBe(true)
      expect(await store.head('ledgerline.rehearsal', 'note/rehearsal')).toEqual({
        version: 0,
        offset: 0,
      })
      expect(await store.client('ledgerline.rehearsal', '0'.repeat(32))).toEqual({
        high: 0,
        subject: null,
      })
      // The first real append is the log's first entry: no position went to the rehearsal.
      const [first] = await store.append('acme', [{ entry: entry(1) }])
      expect(first).toMatchObject({ status: 'appended', version: 1, offset: 1 })
      expect(replies).toEqual(['rehearsed:true', 'written'])
    } finally {
      await store.close()
    }
  })

  it('dies inside a commit: the call fails store_failed, the relay is told once, the file keeps every acked entry and nothing of the lost group', async () => {
    const file = tempFile()
    const failures: RelayError[] = []
    const store = await createSqliteStore({
      file,
      writer: 'worker',
      onFailed: (error) => failures.push(error),
      writerThread: { dieInWrite: 3 },
    })
    expect((await store.append('acme', [{ entry: entry(1) }]))[0]?.status).toBe('appended')
    expect((await store.append('acme', [{ entry: entry(2) }]))[0]?.status).toBe('appended')
    const lost = await store.append('acme', [{ entry: entry(3) }, { entry: entry(4) }]).then(
      () => undefined,
      (error: unknown) => error,
    )
    expect(lost).toBeInstanceOf(RelayError)
    expect((lost as RelayError).kind).toBe('store_failed')
    expect(failures.map((f) => f.kind)).toEqual(['store_failed'])
    // Every later write fails typed, at once; reads still answer from the main connection.
    const later = await store.append('acme', [{ entry: entry(3) }]).catch((e: unknown) => e)
    expect((later as RelayError).kind).toBe('store_failed')
    expect((await store.partitionHeads()).reduce((a, b) => a + b, 0)).toBe(2)
    await store.close()
    expect(failures).toHaveLength(1)

    const reopened = await createSqliteStore({ file, writer: 'worker' })
    try {
      expect(await reopened.client('acme', CLIENT)).toEqual({ high: 2, subject: null })
      const resend = await reopened.append('acme', [
        { entry: entry(2) },
        { entry: entry(3) },
        { entry: entry(4) },
      ])
      expect(resend.map((r) => r.status)).toEqual(['duplicate', 'appended', 'appended'])
      const heads = await reopened.partitionHeads()
      expect(heads.reduce((a, b) => a + b, 0)).toBe(4)
    } finally {
      await reopened.close()
    }
  })

  it('terminated while appends stream: everything acked is in the reopened file, offsets gap-free', async () => {
    const file = tempFile()
    let worker: Worker | undefined
    const store = await createSqliteStore({
      file,
      writer: 'worker',
      partitions: 1,
      writerThread: { onWorker: (w) => (worker = w) },
    })
    const acked: number[] = []
    const calls: Promise<AppendResult[] | undefined>[] = []
    for (let seq = 1; seq <= 400; seq++) {
      calls.push(
        store.append('acme', [{ entry: entry(seq) }]).then(
          (results) => {
            if (results[0]?.status === 'appended') acked.push(seq)
            return results
          },
          (error: unknown) => {
            // A call refused for a gap after the lost one, or failed with the thread.
            if (!(error instanceof RelayError) && !isLogStoreError(error)) throw error
            return undefined
          },
        ),
      )
      // Let some groups commit before the thread is stopped under the rest.
      if (seq === 200) await calls[100]
      if (seq === 200) void worker?.terminate()
    }
    await Promise.all(calls)
    await store.close()
    expect(acked.length).toBeGreaterThan(0)
    expect(acked.length).toBeLessThan(400)

    const reopened = await createSqliteStore({ file })
    try {
      const { entries, throughOffset } = await reopened.readPartition('acme', 0, 0, 1_000)
      const seqs = entries.map((e) => e.clientSeq)
      for (const seq of acked) expect(seqs).toContain(seq)
      // Gap-free: a prefix of the client's sequence, offsets 1…n.
      expect(seqs).toEqual(seqs.map((_, i) => i + 1))
      expect(entries.map((e) => e.offset)).toEqual(seqs.map((_, i) => i + 1))
      expect(throughOffset).toBe(seqs.length)
    } finally {
      await reopened.close()
    }
  })

  it(`rejects the request past ${SQLITE_WRITER_REQUESTS_MAX} waiting as overloaded, sending nothing of it`, async () => {
    const file = tempFile()
    // Opened (and migrated) by a store first, as the store does before starting its thread.
    await (await createSqliteStore({ file })).close()
    const thread = await startWriterThread({ file })
    try {
      const empty = {
        clients: new Map(),
        entries: [],
        refusals: [],
        deferrals: [],
        aliases: [],
        partitionHeads: new Map(),
      }
      const sent = Array.from({ length: SQLITE_WRITER_REQUESTS_MAX + 1 }, () =>
        thread.write(empty, 1).then(
          () => 'written',
          (error: unknown) => (isLogStoreError(error) ? error.kind : 'other'),
        ),
      )
      const outcomes = await Promise.all(sent)
      expect(outcomes.filter((o) => o === 'written')).toHaveLength(SQLITE_WRITER_REQUESTS_MAX)
      expect(outcomes.at(-1)).toBe('overloaded')
      // The bound is of waiting requests: once answered, the thread takes more.
      await expect(thread.write(empty, 1)).resolves.toBeUndefined()
    } finally {
      await thread.close()
    }
  })
})

describe('a relay on a SQLite log whose writer thread dies', () => {
  // Goal: the relay reports the death (a `store_failed` line, `onStoreFailed` with a typed
  // error, once) so the CLI exits, and the append in flight fails typed rather than hanging.
  it('logs store_failed, tells onStoreFailed once and fails the append', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'll-relay-worker-'))
    dirs.push(dataDir)
    const lines: Record<string, unknown>[] = []
    const logger = pino(
      { level: 'info' },
      { write: (l: string) => void lines.push(JSON.parse(l) as Record<string, unknown>) },
    )
    const failed: RelayError[] = []
    const relay = await createRelay({
      dataDir,
      auth: { secret: 's'.repeat(32) },
      logger,
      sqliteWriter: 'worker',
      sqliteWriterThread: { dieInWrite: 2 },
      onStoreFailed: (error) => failed.push(error),
    })
    try {
      expect((await relay.store.append('acme', [{ entry: entry(1) }]))[0]?.status).toBe('appended')
      const lost = await relay.store.append('acme', [{ entry: entry(2) }]).catch((e: unknown) => e)
      expect(lost).toBeInstanceOf(RelayError)
      expect((lost as RelayError).kind).toBe('store_failed')
      expect(failed.map((e) => e.kind)).toEqual(['store_failed'])
      expect(lines.filter((l) => l.event === 'store_failed')).toHaveLength(1)
    } finally {
      await relay.close()
    }
    expect(failed).toHaveLength(1)
  })
})
