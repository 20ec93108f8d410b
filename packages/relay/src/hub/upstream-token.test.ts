// Goal: a store hub's token sources (`upstream-token.ts`): exactly one of a file (read again on
// every call, so a replaced file is picked up), a value, or a command (run again on every call);
// a source that yields no token rejects with code `upstream_token`, a bad configuration throws
// code `config`.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { isHubError } from './hub-error.ts'
import { upstreamTokenSource } from './upstream-token.ts'

const dirs: string[] = []
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})
const dir = () => {
  const d = mkdtempSync(join(tmpdir(), 'll-hub-token-'))
  dirs.push(d)
  return d
}
const code = async (p: Promise<unknown>) =>
  p.then(
    () => 'resolved',
    (e: unknown) => (isHubError(e) ? e.code : 'other'),
  )

describe('upstreamTokenSource', () => {
  it('reads a file again on every call', async () => {
    const file = join(dir(), 'hub.jwt')
    writeFileSync(file, 'aaa.bbb.ccc\n')
    const token = upstreamTokenSource({ file })
    expect(await token()).toBe('aaa.bbb.ccc')
    writeFileSync(file, 'ddd.eee.fff')
    expect(await token()).toBe('ddd.eee.fff')
    rmSync(file)
    expect(await code(token())).toBe('upstream_token')
  })

  it('runs a command again on every call', async () => {
    const counter = join(dir(), 'n')
    writeFileSync(counter, '')
    const token = upstreamTokenSource({
      command: `echo x >> ${counter}; printf 'tok.%s.sig' "$(wc -l < ${counter} | tr -d ' ')"`,
    })
    expect(await token()).toBe('tok.1.sig')
    expect(await token()).toBe('tok.2.sig')
    expect(await code(upstreamTokenSource({ command: 'exit 3' })())).toBe('upstream_token')
    expect(await code(upstreamTokenSource({ command: 'true' })())).toBe('upstream_token')
  })

  it('takes a value, and exactly one source', async () => {
    expect(await upstreamTokenSource({ value: ' a.b.c ' })()).toBe('a.b.c')
    expect(() => upstreamTokenSource({})).toThrow(/exactly one/)
    expect(() => upstreamTokenSource({ value: 'a.b.c', file: '/x' })).toThrow(/exactly one/)
    expect(await code(upstreamTokenSource({ value: 'two words' })())).toBe('upstream_token')
  })
})
