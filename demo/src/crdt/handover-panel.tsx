/**
 * The "Shift handover notes" panel beside the cash drawer: the notes of the store's registers,
 * newest last, and a field to add one. Works offline; notes merge when registers reconnect.
 */
import { useState } from 'react'
import { useHandoverNotes } from './handover-notes.ts'

export function HandoverPanel() {
  const { notes, add } = useHandoverNotes()
  const [text, setText] = useState('')
  return (
    <section className="card narrow-card" aria-label="Shift handover notes">
      <h2>Shift handover notes</h2>
      {notes === undefined ? <p className="muted">Loading notes…</p> : null}
      {notes !== undefined && notes.length === 0 ? (
        <p className="muted">No notes yet. Leave one for the next shift.</p>
      ) : null}
      <ul className="handover-notes" data-testid="handover-notes">
        {(notes ?? []).map((n) => (
          <li key={n.id} data-testid="handover-note">
            <span className="muted">
              {n.author} · {new Date(n.at).toLocaleString()}
            </span>
            <span data-testid="handover-note-text">{n.text}</span>
          </li>
        ))}
      </ul>
      <form
        className="inline"
        onSubmit={(e) => {
          e.preventDefault()
          add(text)
          setText('')
        }}
      >
        <input
          data-testid="handover-input"
          placeholder="e.g. Till 2 drawer sticks"
          value={text}
          onChange={(e) => setText(e.target.value)}
        />
        <button
          className="small"
          disabled={notes === undefined || text.trim() === ''}
          data-testid="handover-add"
        >
          Add note
        </button>
      </form>
    </section>
  )
}
