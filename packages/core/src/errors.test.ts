// Goal: LedgerError carries its kind and message; assert and unreachable crash with a message
// marking a Ledgerline bug. Method: direct calls.
import { describe, expect, it } from 'vitest'
import { assert, LEDGER_ERROR_KINDS, LedgerError, unreachable } from './errors.ts'

describe('errors', () => {
  it('LedgerError keeps kind, message and cause', () => {
    const cause = new Error('root')
    const error = new LedgerError('invalid_entity', 'entity must be a string', { cause })
    expect(error).toBeInstanceOf(Error)
    expect(error.name).toBe('LedgerError')
    expect(error.kind).toBe('invalid_entity')
    expect(error.message).toBe('entity must be a string')
    expect(error.cause).toBe(cause)
    expect(LEDGER_ERROR_KINDS).toContain(error.kind)
  })

  it('assert passes on truthy values and crashes on falsy ones', () => {
    expect(() => assert(1)).not.toThrow()
    expect(() => assert(0, 'count positive')).toThrow('Ledgerline bug: count positive')
  })

  it('unreachable crashes naming the value', () => {
    expect(() => unreachable('odd' as never)).toThrow('unreachable case "odd"')
  })
})
