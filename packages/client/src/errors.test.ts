// Goal: every failure reaches the app as a ClientError of the documented kind: a quota error
// as `storage_full` however the browser wraps it, a closed database as `closed`, core's
// refusal of an entry as `invalid` or `unknown_type`, anything else as `storage`.
// Method: errors shaped like the browsers' (DOMException-like objects), and core's LedgerError.
import { describe, expect, it } from 'vitest'
import { LedgerError } from '@ledgerline/core'
import {
  ClientError,
  fromLedgerError,
  isQuotaError,
  isStorageFull,
  toStorageError,
} from './errors.ts'

describe('client errors', () => {
  it('finds a quota error however it is wrapped', () => {
    expect(isQuotaError({ name: 'QuotaExceededError' })).toBe(true)
    expect(isQuotaError({ code: 22 })).toBe(true)
    expect(isQuotaError({ name: 'AbortError', message: 'Quota exceeded' })).toBe(true)
    expect(
      isQuotaError({ name: 'AbortError', cause: { inner: { name: 'QuotaExceededError' } } }),
    ).toBe(true)
    expect(isQuotaError({ name: 'AbortError', message: 'aborted' })).toBe(false)
    expect(isQuotaError('QuotaExceededError')).toBe(false)
  })

  it('turns failures of a client store write into the documented kinds', () => {
    const full = toStorageError({ name: 'AbortError' }, { name: 'QuotaExceededError' })
    expect(isStorageFull(full)).toBe(true)
    expect(toStorageError({ name: 'InvalidStateError' }).kind).toBe('closed')
    expect(toStorageError(new LedgerError('invalid_entry', 'kind: bad')).kind).toBe('invalid')
    expect(toStorageError(new LedgerError('unknown_type', 'no type')).kind).toBe('unknown_type')
    expect(toStorageError(new Error('disk on fire')).kind).toBe('storage')
    const own = new ClientError('outbox_full', 'full')
    expect(toStorageError(own)).toBe(own)
    expect(fromLedgerError(new Error('other'))).toBeInstanceOf(Error)
  })
})
