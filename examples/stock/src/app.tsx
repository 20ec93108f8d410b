import { ClientError } from '@ledgerline/client'
import type { ClientStatus, Correction } from '@ledgerline/client'
import { useCorrections, useEntity, useStatus } from '@ledgerline/react'
import { useState } from 'react'
import { append, device } from './ledgerline.ts'
import type { Stock } from './schema.ts'

const ITEM = 'stock/hand-grinder'

export function App() {
  const stock = useEntity<Stock>(ITEM)
  const status = useStatus<ClientStatus>()
  const corrections = useCorrections<Correction>()
  const [qty, setQty] = useState('-1')
  const [problem, setProblem] = useState('')

  async function move() {
    setProblem('')
    try {
      await append(ITEM, 'stock.moved', { qty: Number(qty) })
    } catch (error) {
      // A typed refusal: `invalid` names the field and why (here the kind's validator).
      setProblem(error instanceof ClientError ? `${error.kind}: ${error.message}` : String(error))
    }
  }

  return (
    <main>
      <h1>Hand grinder on {device}</h1>
      <p>
        On hand: <output data-testid="on-hand">{stock?.view.onHand ?? '…'}</output> (
        <span data-testid="pending">{stock?.pending.length ?? 0}</span> not yet synced)
      </p>
      <label>
        Move <input data-testid="qty" value={qty} onChange={(e) => setQty(e.target.value)} />
      </label>
      <button data-testid="move" onClick={() => void move()}>
        Record
      </button>
      {problem === '' ? null : (
        <p role="alert" data-testid="problem">
          {problem}
        </p>
      )}
      <p data-testid="status">
        {status === undefined
          ? 'starting'
          : `${status.online ? 'online' : 'offline'} · ${status.outboxEntries} in outbox`}
      </p>
      <ul data-testid="corrections">
        {corrections.map((c) => (
          <li key={c.id}>
            {c.entry.kind}: {JSON.stringify(c.entry.data)}
          </li>
        ))}
      </ul>
    </main>
  )
}
