// Goal: the data directory lock holds within one process too (two relays in one test process
// must not share a log), and is free again once released. Method: lock a temp dir twice, then
// release and lock again; the refusal names the directory and this process's pid.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { lockDataDir } from './data-dir-lock.ts'

const dir = mkdtempSync(join(tmpdir(), 'll-lock-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe('lockDataDir', () => {
  it('refuses a second holder and frees the directory on release', () => {
    const first = lockDataDir(dir)
    let refused: unknown
    try {
      lockDataDir(dir)
    } catch (error) {
      refused = error
    }
    expect(refused).toMatchObject({ name: 'RelayError', kind: 'locked' })
    expect(String((refused as Error).message)).toContain(`pid ${process.pid}`)
    expect(String((refused as Error).message)).toContain(dir)
    first.release()
    first.release()
    const second = lockDataDir(dir)
    second.release()
  })
})
