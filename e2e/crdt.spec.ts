/**
 * The demo's CRDT entities against a real relay process, in Chromium: the catalog text (a Yjs
 * document head office edits) and the shift handover notes (an Automerge document registers
 * add to, offline too). Store s6 with registers and head office the other specs do not use.
 */
import type { Page } from '@playwright/test'
import { expect, test } from './fixtures.ts'
import { kindsOf, readRelayLog } from './relay-log.ts'

test('catalog text renamed live at head office; handover notes added offline merge', async ({
  open,
  relay,
}) => {
  // Goal: a CRDT entity syncs live like a ledger, and edits made offline merge on reconnect.
  // Method: head office renames an item and gives it a description; another browser context's
  // register shows both without a reload. Then one register goes offline, adds a handover note
  // and reloads (the app and Automerge's WASM come from the service worker, the note from the
  // outbox) while another adds one online; back online, both registers list both notes, and
  // the relay's log holds them as entries of the store's documents.
  const hq = await open('s6', 'hq')
  const a = await open('s6', 'r2')
  const b = await open('s6', 'r3')
  await expect(a.page.getByTestId('item-name-mug')).toHaveText('Enamel mug')

  const name = hq.page.getByTestId('catalog-name-mug')
  await expect(name).toBeEnabled()
  await name.fill('Harbour mug')
  await hq.page.getByTestId('catalog-description-mug').fill('Blue enamel, 350 ml')
  await expect(a.page.getByTestId('item-name-mug')).toHaveText('Harbour mug')
  await expect(a.page.getByTestId('item-description-mug')).toHaveText('Blue enamel, 350 ml')
  await expect(b.page.getByTestId('item-name-mug')).toHaveText('Harbour mug')
  // The price is still the ledger's: the catalog text never touches it.
  await expect(a.page.getByTestId('item-price-mug')).toHaveText('$18.00')
  await a.shot('catalog-text')

  await a.page.evaluate(async () => {
    await navigator.serviceWorker.ready
  })
  await a.tab('drawer')
  await b.tab('drawer')
  await a.goOffline()
  await addNote(a.page, 'Till 2 drawer sticks')
  await addNote(b.page, 'Milk delivery moved to 7:00')
  // Offline, the note is in the register's outbox; the other register cannot know it yet.
  await expect(a.status('outbox')).toHaveText('1 in outbox')
  const reload = await a.page.reload()
  expect(reload?.fromServiceWorker()).toBe(true)
  await a.tab('drawer')
  await expect(a.page.getByTestId('handover-note-text')).toHaveText(['Till 2 drawer sticks'])
  await expect(a.status('outbox')).toHaveText('1 in outbox')
  await expect(b.page.getByTestId('handover-note-text')).toHaveText(['Milk delivery moved to 7:00'])

  await a.goOnline()
  await a.expectDrained()
  // Notes are listed by time, so both registers show the same list in the same order.
  for (const r of [a, b]) {
    await expect(r.page.getByTestId('handover-note-text')).toHaveText([
      'Till 2 drawer sticks',
      'Milk delivery moved to 7:00',
    ])
    await expect(r.page.getByTestId('handover-note').first()).toContainText('Register 2')
  }
  await b.shot('handover-notes')

  expect(new Set(kindsOf(readRelayLog(relay.dataDir, 'catalog/s6:text')))).toEqual(
    new Set(['yjs.update']),
  )
  expect(kindsOf(readRelayLog(relay.dataDir, 'handover/s6:notes'))).toEqual([
    'automerge.update',
    'automerge.update',
  ])
})

async function addNote(page: Page, text: string): Promise<void> {
  await page.getByTestId('handover-input').fill(text)
  await page.getByTestId('handover-add').click()
  await expect(page.getByTestId('handover-note-text').filter({ hasText: text })).toBeVisible()
}
