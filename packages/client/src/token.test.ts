// Goal: a token function is asked once until the token is invalidated, a string token is used
// as it is, and the tenant claim is read from a JWT's payload (or not at all from garbage).
// Method: counting token functions; hand-made tokens.
import { describe, expect, it } from 'vitest'
import { createTokenSource, expiresAtOf, tenantFromToken } from './token.ts'

const jwt = (claims: object) =>
  `h.${btoa(JSON.stringify(claims)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')}.s`

describe('token', () => {
  it('asks the token function once until invalidated', async () => {
    let asked = 0
    const source = createTokenSource(async () => `t${++asked}`)
    expect(await source.get()).toBe('t1')
    expect(await source.get()).toBe('t1')
    source.invalidate()
    expect(await source.get()).toBe('t2')
    const fixed = createTokenSource('fixed')
    fixed.invalidate()
    expect(await fixed.get()).toBe('fixed')
  })

  it('reads the tenant claim, and nothing from a token that is not a JWT', () => {
    expect(tenantFromToken(jwt({ tenant: 'acme', sub: 'till-1' }))).toBe('acme')
    // base64url with the characters plain base64 does not use
    expect(tenantFromToken(jwt({ tenant: 'ä?>~', pad: 'x' }))).toBe('ä?>~')
    expect(tenantFromToken(jwt({ tenant: 7 }))).toBeUndefined()
    expect(tenantFromToken('no-dots')).toBeUndefined()
    expect(tenantFromToken('a.%%%.b')).toBeUndefined()
  })

  it('reads when a token expires, and says whether a new one can be asked for', () => {
    expect(expiresAtOf(jwt({ exp: 1_700_000_000 }))).toBe(1_700_000_000_000)
    expect(expiresAtOf(jwt({ exp: 'soon' }))).toBeUndefined()
    expect(expiresAtOf('opaque')).toBeUndefined()
    expect(createTokenSource(async () => 't').renewable).toBe(true)
    expect(createTokenSource('fixed').renewable).toBe(false)
  })
})
