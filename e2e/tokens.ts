/**
 * Development tokens the relay's issuer would not hand out (an expired one), signed with the
 * test relay's secret: HS256 over the same claims as the relay's `/dev/token` (tenant, read
 * and write grants, subject, issuer `ledgerline`, audience `ledgerline-relay`).
 */
import { createHmac } from 'node:crypto'

export function signDevToken(options: {
  readonly secret: string
  readonly tenant: string
  readonly sub: string
  /** Seconds from now; negative for a token that already expired. */
  readonly expiresInS: number
}): string {
  const nowS = Math.floor(Date.now() / 1000)
  const header = { alg: 'HS256', typ: 'JWT' }
  const claims = {
    tenant: options.tenant,
    read: ['*'],
    write: ['*'],
    sub: options.sub,
    iss: 'ledgerline',
    aud: 'ledgerline-relay',
    iat: nowS - 3600,
    exp: nowS + options.expiresInS,
  }
  const body = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(claims))}`
  const signature = createHmac('sha256', options.secret).update(body).digest('base64url')
  return `${body}.${signature}`
}

function base64url(text: string): string {
  return Buffer.from(text).toString('base64url')
}
