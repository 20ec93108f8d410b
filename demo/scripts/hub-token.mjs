// Prints a store hub's token from head office's development issuer (`GET /dev/token?role=hub`:
// full grants plus a forward grant), for `--upstream-token-command`: the hub runs it again for
// every connection and renewal. Usage: node demo/scripts/hub-token.mjs <head office http url>
// [tenant] [subject]. Exits 1 with a line on stderr when head office does not answer.
const [base, tenant = 'harbour-coffee', sub = 'store-hub'] = process.argv.slice(2)
if (base === undefined) {
  console.error('usage: hub-token.mjs <head office http url> [tenant] [subject]')
  process.exit(2)
}
const query = new URLSearchParams({ tenant, sub, role: 'hub' })
try {
  const res = await fetch(`${base}/dev/token?${query}`, { signal: AbortSignal.timeout(5_000) })
  if (!res.ok) throw new Error(`head office answered ${res.status}`)
  const body = await res.json()
  if (typeof body.token !== 'string') throw new Error('head office sent no token')
  process.stdout.write(`${body.token}\n`)
} catch (error) {
  console.error(`hub-token: ${error instanceof Error ? error.message : String(error)}`)
  process.exit(1)
}
