/**
 * The demo's CRDT entities against a real relay process, in Chromium: the catalog descriptions
 * (a Yjs document head office edits) and the shift handover notes (an Automerge document
 * registers add to, offline too); and, beside them, product names, which are one value each
 * and never merged. Store s6 with registers and head office the other specs do not use, and
 * s9 for the names.
 */
import type { Page } from '@playwright/test'
import { expect, test } from './fixtures.ts'
import { kindsOf, readRelayLog } from './relay-log.ts'

test('catalog renamed and described live at head office; handover notes added offline merge', async ({
  open,
  relay,
}) => {
  // Goal: a CRDT entity syncs live like a ledger, and edits made offline merge on reconnect.
  // Method: head office renames an item (a ledger entry) and gives it a description (Yjs);
  // another browser context's register shows both without a reload. Then one register goes offline, adds a handover note
  // and reloads (the app and Automerge's WASM come from the service worker, the note from the
  // outbox) while another adds one online; back online, both registers list both notes, and
  // the relay's log holds them as entries of the store's documents.
  const hq = await open('s6', 'hq')
  const a = await open('s6', 'r2', { shift: false })
  const b = await open('s6', 'r3', { shift: false })
  await expect(a.page.getByTestId('item-name-mug')).toHaveText('Enamel mug')

  await hq.page.getByTestId('name-input-mug').fill('Harbour mug')
  await hq.page.getByTestId('name-save-mug').click()
  const description = hq.page.getByTestId('catalog-description-mug')
  await expect(description).toBeEnabled()
  await description.fill('Blue enamel, 350 ml')
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
  await expect(a.status('outbox')).toHaveAttribute('data-outbox', '1')
  const reload = await a.page.reload()
  expect(reload?.fromServiceWorker()).toBe(true)
  await a.tab('drawer')
  await expect(a.page.getByTestId('handover-note-text')).toHaveText(['Till 2 drawer sticks'])
  await expect(a.status('outbox')).toHaveAttribute('data-outbox', '1')
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
  expect(kindsOf(readRelayLog(relay.dataDir, 'product/s6:mug'))).toEqual(['product.renamed'])
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

test('two offline renames meet: both names in the history, head office picks one', async ({
  open,
  relay,
}) => {
  // Goal: a product name is one value: two offices that rename an item while offline never
  // produce a merged string; both names stay visible in the item's entry history, and head
  // office's choice is what every register shows. Method: two head office windows go offline,
  // each renames the croissant, both come back; the relay marks the conflict, the history
  // lists both renames, one office picks a name from the Inbox, and a register shows it.
  const hq1 = await open('s9', 'hq')
  const hq2 = await open('s9', 'hq')
  const till = await open('s9', 'r1', { shift: false })
  await hq1.goOffline()
  await hq2.goOffline()
  for (const [office, name] of [
    [hq1, 'Almond croissant'],
    [hq2, 'Butter croissant'],
  ] as const) {
    await office.page.getByTestId('name-input-croissant').fill(name)
    await office.page.getByTestId('name-save-croissant').click()
    await expect(office.page.getByTestId('name-current-croissant')).toHaveText(name)
  }
  await hq1.goOnline()
  await hq1.expectDrained()
  await hq2.goOnline()
  await hq2.expectDrained()

  // Both names are kept; the first to reach head office shows until one is picked.
  await expect(hq2.page.getByTestId('name-conflict-croissant')).toHaveText('2 names: pick one')
  await hq2.page.getByTestId('name-history-croissant').click()
  const history = hq2.page.getByTestId('name-history-entry')
  await expect(history).toHaveCount(3)
  await expect(hq2.page.getByTestId('name-history')).toContainText('renamed it “Almond croissant”')
  await expect(hq2.page.getByTestId('name-history')).toContainText('renamed it “Butter croissant”')
  await expect(hq2.page.getByTestId('name-history')).toContainText('Two names met')
  await hq2.shot('name-history')
  const shown = (await till.page.getByTestId('item-name-croissant').textContent()) ?? ''
  expect(['Almond croissant', 'Butter croissant']).toContain(shown)

  await hq1.tab('inbox')
  const item = hq1.page.locator('[data-testid="inbox-item"][data-kind="product.name_conflict"]')
  await expect(item.getByTestId('inbox-title')).toContainText('Two names for Croissant')
  await hq1.shot('name-conflict', { docs: 'inbox' })
  await item.getByRole('button', { name: 'Use “Butter croissant”' }).click()
  await expect(item).toHaveCount(0)
  await expect(till.page.getByTestId('item-name-croissant')).toHaveText('Butter croissant')
  await expect(hq2.page.getByTestId('name-conflict-croissant')).toHaveCount(0)
  await hq1.expectDrained()

  expect(kindsOf(readRelayLog(relay.dataDir, 'product/s9:croissant'))).toEqual([
    'product.renamed',
    'product.renamed',
    'product.name_conflict',
    'product.name_chosen',
  ])
})
