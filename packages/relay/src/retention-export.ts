/**
 * Retention for operators (issue 17, off by default; `cli-retention.ts` runs it): the export of
 * the history a drop may take out of the hot log, and the drop of exactly what an export holds.
 *
 *   exportRetention(store, schema, { before, dir })   → dir/partition-P-C.ndjson + manifest.json
 *   dropRetention(store, schema, { before, dir })     → the exported entries leave the hot log
 *
 * Terms: the *droppable* history of a ledger entity is its versions from its first kept one,
 * in order, while each was committed before `before`, is at or below its snapshot under the
 * type's current fold key, and is below its head (the newest entry always stays).
 *
 * Invariants:
 * 1. The export holds exactly the droppable history of every ledger entity at the time it ran,
 *    one NDJSON line per entry with the log's id and generation, the tenant, partition, offset,
 *    entity, version, id and the whole entry (bytes as `{"$bytes": base64}`), grouped by
 *    partition into files of at most `RETENTION_EXPORT_FILE_BYTES_MAX` bytes.
 * 2. Every file is written under a temporary name, fsynced and renamed; the manifest (counts,
 *    offsets, each file's SHA-256) goes last the same way. A directory holding a manifest is
 *    never written over (`RetentionError('export_exists')`).
 * 3. CRDT entities and entities of types the schema lacks are left alone: their snapshots are
 *    entries of their own (`crdt-snapshots.ts`), so no ledger snapshot covers them.
 * 4. A drop reads the manifest and every file and checks each one's size and digest, and that
 *    the export is of this log (`RetentionError` `no_export`, `export_damaged`, `other_log`);
 *    then it asks the store to drop, in one transaction, the exported entries committed before
 *    its own `before` (what a first drop already took is skipped: a drop runs again safely). A
 *    cut the store refuses (no snapshot covers it, the log changed) is `RetentionError` with the
 *    store's code, and nothing is dropped.
 */
import { createHash } from 'node:crypto'
import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  writeSync,
} from 'node:fs'
import { join } from 'node:path'
import { foldKey } from '@ledgerline/core'
import type { Schema, StoredEntry } from '@ledgerline/core'
import type {
  LedgerSnapshots,
  LogStore,
  RetentionCut,
  RetentionLogStore,
  RetentionRefusal,
} from '@ledgerline/log'
import {
  RETENTION_DROP_ENTRIES_MAX,
  RETENTION_ENTITIES_PAGE,
  RETENTION_EXPORT_FILE_BYTES_MAX,
  RETENTION_READ_PAGE_ENTRIES,
} from './limits.ts'

/** The manifest's file name in an export directory. */
export const RETENTION_MANIFEST = 'manifest.json'
/** The manifest's `format`. */
export const RETENTION_FORMAT = 'ledgerline-retention-export/1'

/** Why a retention command refused (nothing was dropped). */
export type RetentionErrorCode =
  | 'no_export'
  | 'export_exists'
  | 'export_damaged'
  | 'other_log'
  | 'too_large'
  | RetentionRefusal

/**
 * A refused `retention export` or `drop`: an operator's mistake or a log that moved; nothing
 * was dropped.
 */
export class RetentionError extends Error {
  readonly code: RetentionErrorCode
  constructor(code: RetentionErrorCode, message: string) {
    super(message)
    this.name = 'RetentionError'
    this.code = code
  }
}

/** One exported file, as the manifest lists it. */
export interface RetentionFile {
  readonly name: string
  readonly partition: number
  readonly entries: number
  readonly firstOffset: number
  readonly lastOffset: number
  readonly bytes: number
  readonly sha256: string
}

export interface RetentionManifest {
  readonly format: typeof RETENTION_FORMAT
  readonly log: { readonly id: string; readonly generation: number }
  /** Entries committed before this (ms since the epoch) were candidates. */
  readonly before: number
  readonly entries: number
  readonly entities: number
  readonly files: readonly RetentionFile[]
}

/** One line of an export file (invariant 1). */
export interface RetentionLine {
  readonly log: string
  readonly generation: number
  readonly tenant: string
  readonly partition: number
  readonly offset: number
  readonly entity: string
  readonly version: number
  readonly id: string
  readonly committedAt: number
  readonly entry: StoredEntry
}

type RetentionStore = LogStore & LedgerSnapshots & RetentionLogStore

/**
 * Writes the droppable history of every ledger entity committed before `before` to `dir`
 * (invariants 1–3) and returns the manifest.
 *
 * @example
 * const manifest = await exportRetention(store, schema, { before: Date.parse('2025-01-01'), dir })
 */
export async function exportRetention(
  store: RetentionStore,
  schema: Schema,
  options: { readonly before: number; readonly dir: string; readonly fileBytesMax?: number },
): Promise<RetentionManifest> {
  const { before, dir } = options
  const fileBytesMax = options.fileBytesMax ?? RETENTION_EXPORT_FILE_BYTES_MAX
  mkdirSync(dir, { recursive: true })
  if (existsSync(join(dir, RETENTION_MANIFEST))) {
    throw new RetentionError('export_exists', `${dir} already holds an export: name another`)
  }
  const log = await store.identity()
  const writers = new Map<number, PartitionWriter>()
  const writerOf = (p: number) => {
    let w = writers.get(p)
    if (w === undefined) writers.set(p, (w = new PartitionWriter(dir, p, fileBytesMax)))
    return w
  }
  let entities = 0
  let entries = 0
  try {
    let after: string | undefined
    do {
      const page = await store.entities(after, RETENTION_ENTITIES_PAGE)
      after = page.next
      for (const e of page.entities) {
        const droppable = await droppableOf(store, schema, e.tenant, e.entity, e.version, before)
        if (droppable.length === 0) continue
        entities++
        entries += droppable.length
        for (const entry of droppable) {
          const line: RetentionLine = {
            log: log.id,
            generation: log.generation,
            tenant: e.tenant,
            partition: entry.partition,
            offset: entry.offset,
            entity: entry.entity,
            version: entry.version,
            id: entry.id,
            committedAt: entry.committedAt,
            entry,
          }
          writerOf(entry.partition).write(line)
        }
      }
    } while (after !== undefined)
    const files = [...writers.values()].flatMap((w) => w.finish())
    const manifest: RetentionManifest = {
      format: RETENTION_FORMAT,
      log,
      before,
      entries,
      entities,
      files: files.sort((a, b) => a.partition - b.partition || (a.name < b.name ? -1 : 1)),
    }
    writeAtomically(dir, RETENTION_MANIFEST, `${JSON.stringify(manifest, null, 2)}\n`)
    return manifest
  } finally {
    for (const w of writers.values()) w.abandon()
  }
}

/**
 * Drops from the hot log the entries of the export in `dir` committed before `before`
 * (invariant 4); the counts of what it dropped.
 *
 * @example
 * const { entries } = await dropRetention(store, schema, { before, dir })
 */
export async function dropRetention(
  store: RetentionStore,
  schema: Schema,
  options: { readonly before: number; readonly dir: string | undefined },
): Promise<{ readonly entries: number; readonly entities: number; readonly skipped: number }> {
  const { before, dir } = options
  if (dir === undefined) {
    throw new RetentionError('no_export', 'a drop needs the export of what it drops (--export DIR)')
  }
  const manifest = readManifest(dir)
  const log = await store.identity()
  if (manifest.log.id !== log.id) {
    throw new RetentionError(
      'other_log',
      `the export in ${dir} is of log ${manifest.log.id}, this is ${log.id}`,
    )
  }
  if (manifest.entries > RETENTION_DROP_ENTRIES_MAX) {
    throw new RetentionError(
      'too_large',
      `the export holds ${manifest.entries} entries, a drop takes at most ${RETENTION_DROP_ENTRIES_MAX} (RETENTION_DROP_ENTRIES_MAX): export with an earlier --before`,
    )
  }
  const byEntity = new Map<string, RetentionLine[]>()
  for (const file of manifest.files) {
    for (const line of readExportFile(dir, file)) {
      if (line.committedAt >= before) continue
      const key = `${line.tenant}\u0000${line.entity}`
      let lines = byEntity.get(key)
      if (lines === undefined) byEntity.set(key, (lines = []))
      lines.push(line)
    }
  }
  const cuts: RetentionCut[] = []
  let skipped = 0
  for (const lines of byEntity.values()) {
    lines.sort((a, b) => a.version - b.version)
    const first = lines[0] as RetentionLine
    const type = schema.find(first.entity)
    const kept = await store.firstKept(first.tenant, first.entity)
    // What an earlier drop took is skipped; the rest must start at the first kept version.
    const rest = lines.filter((l) => l.version >= kept)
    skipped += lines.length - rest.length
    if (rest.length === 0) continue
    cuts.push({
      tenant: first.tenant,
      entity: first.entity,
      // No fold key of a type the schema lacks or a CRDT: the store finds no snapshot under it.
      foldKey: type === undefined || type.crdt !== undefined ? '' : foldKey(type),
      from: (rest[0] as RetentionLine).version,
      through: (rest.at(-1) as RetentionLine).version,
      offsets: rest.map((l) => l.offset),
    })
  }
  const outcome = await store.dropHistory(cuts)
  if (outcome._tag === 'refused') {
    throw new RetentionError(outcome.code, `nothing dropped: ${outcome.reason}`)
  }
  return { entries: outcome.entries, entities: outcome.entities, skipped }
}

/** The manifest in `dir` with every file checked (invariant 4). */
export function readManifest(dir: string): RetentionManifest {
  const file = join(dir, RETENTION_MANIFEST)
  if (!existsSync(file)) {
    throw new RetentionError('no_export', `no retention export in ${dir} (${RETENTION_MANIFEST})`)
  }
  let manifest: RetentionManifest
  try {
    manifest = JSON.parse(readFileSync(file, 'utf8')) as RetentionManifest
  } catch (error) {
    throw new RetentionError('export_damaged', `${file}: ${messageOf(error)}`)
  }
  if (manifest.format !== RETENTION_FORMAT || !Array.isArray(manifest.files)) {
    throw new RetentionError('export_damaged', `${file} is not a ${RETENTION_FORMAT} manifest`)
  }
  return manifest
}

/** The lines of one exported file, its size and digest checked against the manifest. */
export function readExportFile(dir: string, file: RetentionFile): RetentionLine[] {
  const path = join(dir, file.name)
  if (!existsSync(path)) throw new RetentionError('export_damaged', `${path} is missing`)
  const bytes = readFileSync(path)
  const digest = createHash('sha256').update(bytes).digest('hex')
  if (bytes.length !== file.bytes || digest !== file.sha256) {
    throw new RetentionError('export_damaged', `${path} is not the file the manifest names`)
  }
  const lines = bytes
    .toString('utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l, reviveBytes) as RetentionLine)
  if (lines.length !== file.entries) {
    throw new RetentionError(
      'export_damaged',
      `${path} holds ${lines.length} entries, not ${file.entries}`,
    )
  }
  return lines
}

/** The files of an export directory, as a check for tests and operators. */
export function exportedFiles(dir: string): string[] {
  return readdirSync(dir).filter((n) => n.endsWith('.ndjson'))
}

// ---------------------------------------------------------------------------------------------

/** The droppable history of one entity (see Terms), in version order. */
async function droppableOf(
  store: RetentionStore,
  schema: Schema,
  tenant: string,
  entity: string,
  head: number,
  before: number,
): Promise<StoredEntry[]> {
  const type = schema.find(entity)
  // Invariant 3.
  if (type === undefined || type.crdt !== undefined) return []
  const snapshot = await store.snapshot(tenant, entity, foldKey(type))
  if (snapshot === undefined) return []
  const through = Math.min(snapshot.version, head - 1)
  const out: StoredEntry[] = []
  let from = await store.firstKept(tenant, entity)
  while (from <= through) {
    const want = Math.min(RETENTION_READ_PAGE_ENTRIES, through - from + 1)
    const read = await store.readHistory(tenant, entity, from, want)
    // A drop ran meanwhile: start again from the new first kept version.
    if (read._tag === 'dropped') {
      out.length = 0
      from = read.firstKept
      continue
    }
    for (const e of read.entries) {
      if (e.committedAt >= before) return out
      out.push(e)
    }
    if (read.entries.length < want) return out
    from += read.entries.length
  }
  return out
}

/** One partition's export files (invariants 1–2). */
class PartitionWriter {
  readonly #dir: string
  readonly #partition: number
  readonly #bytesMax: number
  readonly #done: RetentionFile[] = []
  #open:
    | {
        fd: number
        name: string
        hash: ReturnType<typeof createHash>
        bytes: number
        entries: number
        firstOffset: number
        lastOffset: number
      }
    | undefined

  constructor(dir: string, partition: number, bytesMax: number) {
    this.#dir = dir
    this.#partition = partition
    this.#bytesMax = bytesMax
  }

  write(line: RetentionLine): void {
    const text = Buffer.from(`${JSON.stringify(line, replaceBytes)}\n`, 'utf8')
    if (this.#open !== undefined && this.#open.bytes + text.length > this.#bytesMax) this.#close()
    const f = (this.#open ??= this.#create(line.offset))
    writeSync(f.fd, text)
    f.hash.update(text)
    f.bytes += text.length
    f.entries++
    f.firstOffset = Math.min(f.firstOffset, line.offset)
    f.lastOffset = Math.max(f.lastOffset, line.offset)
  }

  finish(): RetentionFile[] {
    if (this.#open !== undefined) this.#close()
    return this.#done
  }

  /** Closes a file left open by a failure (its temporary name stays; no manifest names it). */
  abandon(): void {
    if (this.#open !== undefined) closeSync(this.#open.fd)
    this.#open = undefined
  }

  #create(offset: number) {
    const chunk = String(this.#done.length).padStart(4, '0')
    const name = `partition-${String(this.#partition).padStart(4, '0')}-${chunk}.ndjson`
    const fd = openSync(join(this.#dir, `.${name}.tmp`), 'w')
    return {
      fd,
      name,
      hash: createHash('sha256'),
      bytes: 0,
      entries: 0,
      firstOffset: offset,
      lastOffset: offset,
    }
  }

  #close(): void {
    const f = this.#open
    if (f === undefined) return
    this.#open = undefined
    fsyncSync(f.fd)
    closeSync(f.fd)
    renameSync(join(this.#dir, `.${f.name}.tmp`), join(this.#dir, f.name))
    this.#done.push({
      name: f.name,
      partition: this.#partition,
      entries: f.entries,
      firstOffset: f.firstOffset,
      lastOffset: f.lastOffset,
      bytes: f.bytes,
      sha256: f.hash.digest('hex'),
    })
  }
}

/** Invariant 2: temp name, fsync, rename, then the directory fsynced. */
function writeAtomically(dir: string, name: string, text: string): void {
  const tmp = join(dir, `.${name}.tmp`)
  const fd = openSync(tmp, 'w')
  try {
    writeSync(fd, text)
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
  renameSync(tmp, join(dir, name))
  const dirFd = openSync(dir, 'r')
  try {
    fsyncSync(dirFd)
  } finally {
    closeSync(dirFd)
  }
}

function replaceBytes(_key: string, value: unknown): unknown {
  return value instanceof Uint8Array ? { $bytes: Buffer.from(value).toString('base64') } : value
}

function reviveBytes(_key: string, value: unknown): unknown {
  if (
    value !== null &&
    typeof value === 'object' &&
    Object.keys(value).length === 1 &&
    typeof (value as { $bytes?: unknown }).$bytes === 'string'
  ) {
    return new Uint8Array(Buffer.from((value as { $bytes: string }).$bytes, 'base64'))
  }
  return value
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}
