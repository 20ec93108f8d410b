/**
 * The exclusive lock a relay holds on its data directory: a second relay on the same directory
 * would write the same log file, and its live subscribers would miss every entry written
 * through the first (issue 13 case 16).
 *
 * Terms: `<dir>/relay.lock` is a SQLite file on which the holder keeps an EXCLUSIVE lock (an
 * OS-level `fcntl` lock, which the kernel drops when the process dies, however it dies);
 * `<dir>/relay.pid` says which process holds it, for the message of whoever is refused.
 *
 * Invariants:
 * 1. At most one holder per directory, across processes and within one process.
 * 2. A lock left by a process that died (SIGKILL, power cut) never blocks a restart: the OS
 *    released it; the stale pid file is overwritten.
 * 3. A refused relay gets `RelayError('locked')` naming the directory and the holder's pid, and
 *    touched nothing.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import Database from 'better-sqlite3'
import { RelayError } from './relay-error.ts'

export interface DataDirLock {
  readonly dir: string
  /** Drops the lock; idempotent. */
  release(): void
}

/** File names inside the data directory. */
export const DATA_DIR_LOCK_FILE = 'relay.lock'
export const DATA_DIR_PID_FILE = 'relay.pid'

/**
 * Takes the lock on `dir` (which must exist) or throws `RelayError('locked')`.
 *
 * @example
 * const lock = lockDataDir('./ledgerline-data')
 * // … run the relay …
 * lock.release()
 */
export function lockDataDir(dir: string): DataDirLock {
  const path = resolve(dir)
  const pidFile = join(path, DATA_DIR_PID_FILE)
  let db: Database.Database
  try {
    // No busy wait: a held lock is an answer, not something to wait out.
    db = new Database(join(path, DATA_DIR_LOCK_FILE), { timeout: 0 })
  } catch (error) {
    throw new RelayError('store_failed', `cannot open the lock file in ${path}`, { cause: error })
  }
  try {
    db.pragma('journal_mode = DELETE')
    db.pragma('locking_mode = EXCLUSIVE')
    // The first write takes the EXCLUSIVE lock, which locking_mode keeps until close.
    db.exec('CREATE TABLE IF NOT EXISTS holder (pid INTEGER); BEGIN EXCLUSIVE; COMMIT')
  } catch (error) {
    db.close()
    if ((error as { code?: unknown }).code === 'SQLITE_BUSY') {
      throw new RelayError(
        'locked',
        `data directory ${path} is in use by another relay (pid ${holderOf(pidFile)}); stop it or use another --data`,
      )
    }
    throw new RelayError('store_failed', `cannot lock ${path}`, { cause: error })
  }
  writeFileSync(pidFile, `${process.pid}\n`)
  let held = true
  return {
    dir: path,
    release() {
      if (!held) return
      held = false
      rmSync(pidFile, { force: true })
      db.close()
    },
  }
}

function holderOf(pidFile: string): string {
  try {
    return readFileSync(pidFile, 'utf8').trim() || 'unknown'
  } catch {
    return 'unknown'
  }
}
