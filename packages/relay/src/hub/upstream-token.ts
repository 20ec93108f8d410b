/**
 * Where a store hub's own token comes from: a file (read again for every hello and renewal, so
 * an operator or an agent can replace it), an environment variable, or a command that prints one
 * (run again for every hello and renewal).
 *
 * Invariants:
 * 1. Exactly one source; anything else is a configuration error (`HubError` code `config`).
 * 2. A source that yields no token (unreadable file, empty output, a command that fails or runs
 *    longer than `TOKEN_COMMAND_TIMEOUT_MS`) rejects with code `upstream_token`; the upstream
 *    link logs it and retries with backoff, and registers keep being served meanwhile.
 */
import { execFile } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { TOKEN_LENGTH_MAX } from '@ledgerline/protocol'
import { HubError } from './hub-error.ts'
import { TOKEN_COMMAND_TIMEOUT_MS } from './hub-limits.ts'

export interface UpstreamTokenSources {
  readonly file?: string | undefined
  readonly value?: string | undefined
  readonly command?: string | undefined
}

/**
 * @example
 * const token = upstreamTokenSource({ file: '/etc/ledgerline/hub.jwt' })
 * await token() // the file's content, trimmed
 */
export function upstreamTokenSource(sources: UpstreamTokenSources): () => Promise<string> {
  const given = [sources.file, sources.value, sources.command].filter(
    (s) => s !== undefined && s !== '',
  )
  if (given.length !== 1) {
    throw new HubError(
      'config',
      'a store hub needs exactly one of --upstream-token-file, LEDGERLINE_UPSTREAM_TOKEN or --upstream-token-command',
    )
  }
  if (sources.value !== undefined && sources.value !== '') {
    const value = sources.value.trim()
    return async () => checked(value, 'LEDGERLINE_UPSTREAM_TOKEN')
  }
  if (sources.file !== undefined && sources.file !== '') {
    const file = sources.file
    return async () => {
      let text: string
      try {
        text = await readFile(file, 'utf8')
      } catch (error) {
        throw new HubError('upstream_token', `cannot read ${file}`, { cause: error })
      }
      return checked(text.trim(), file)
    }
  }
  const command = sources.command as string
  return () =>
    new Promise<string>((resolve, reject) => {
      execFile(
        '/bin/sh',
        ['-c', command],
        { timeout: TOKEN_COMMAND_TIMEOUT_MS, maxBuffer: TOKEN_LENGTH_MAX * 2 },
        (error, stdout) => {
          if (error !== null) {
            reject(new HubError('upstream_token', `token command failed: ${error.message}`))
            return
          }
          try {
            resolve(checked(String(stdout).trim(), 'the token command'))
          } catch (e) {
            reject(e)
          }
        },
      )
    })
}

function checked(token: string, from: string): string {
  if (token === '' || token.length > TOKEN_LENGTH_MAX || /\s/.test(token)) {
    throw new HubError('upstream_token', `${from} gave no token (empty, too long, or not one line)`)
  }
  return token
}
