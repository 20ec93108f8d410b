// The client of this device, against the relay that serves the page (`--static`), with a token
// from its development issuer. Against a production relay, point `url` at it and `token` at
// your own endpoint: anything that answers `{ "token": "…" }` works unchanged.
import type { AppendOf } from '@ledgerline/core'
import type { Entry, Intent } from '@ledgerline/core'
import { createClient } from '@ledgerline/client'
import schema from './schema.ts'

export const device = new URLSearchParams(location.search).get('device') ?? 'till-1'

export const client = createClient({
  url: `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/sync`,
  // Called again whenever the relay says the token expired.
  token: async () => {
    const res = await fetch(`/dev/token?tenant=example&sub=${encodeURIComponent(device)}`)
    if (!res.ok) throw new Error(`the token endpoint answered ${res.status}`)
    return ((await res.json()) as { token: string }).token
  },
  schema,
  dbName: `ledgerline:example:${device}`,
})

/** `client.append`, type-checked against the schema: a wrong kind or data does not compile. */
export const append: AppendOf<typeof schema, { intent?: Intent }, Promise<Entry>> = (
  entity,
  kind,
  data,
  options,
) => client.append(entity, kind, data, options)
