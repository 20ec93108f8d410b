// Goal: a `snapshotsInScope` page reads from the table about the rows it returns, not four
// times as many (issue 17: a bootstrap's 20 pages of 1,000 snapshots each read 4,000 rows and
// kept 1,000), and still finds a page's worth past rows that do not match.
import { expect, it } from 'vitest'
import { SnapshotScan } from './snapshot-rows.ts'
import type { SnapshotRow } from './snapshot-rows.ts'
import { SNAPSHOT_SCAN_ROWS_MAX } from './limits.ts'
import { encodeState } from './snapshot-rows.ts'

const state = encodeState({ n: 1 })

function rows(from: number, count: number, foldKey = 'item@1'): SnapshotRow[] {
  return Array.from({ length: count }, (_, i) => ({
    entity: `item/e${String(from + i).padStart(6, '0')}`,
    fold_key: foldKey,
    version: 1,
    partition: 0,
    offset: from + i,
    committed_at: 0,
    state,
  }))
}

/** Runs a scan over `table` (sorted by entity); answers the page and the rows asked for. */
function scan(table: readonly SnapshotRow[], limit: number, after?: string) {
  const s = new SnapshotScan<SnapshotRow>(['item/*'], ['item@1'], after, limit, (r) => [
    r.entity,
    r.fold_key,
  ])
  let asked = 0
  for (let want = s.want(); want > 0; want = s.want()) {
    asked += want
    const from = table.findIndex((r) => r.entity > s.cursor[0])
    s.take(from < 0 ? [] : table.slice(from, from + want))
  }
  return { page: s.page(), asked }
}

it('asks the table for one page of rows when every row matches', () => {
  const { page, asked } = scan(rows(0, 5_000), 1_000)
  expect(page.snapshots).toHaveLength(1_000)
  expect(asked).toBe(1_000)
  expect(page.next).toBeDefined()
  const again = scan(rows(0, 5_000), 1_000, page.next)
  expect(again.page.snapshots[0]?.entity).toBe('item/e001000')
})

it('reads on past rows of other fold keys, within the scan bound', () => {
  const table = [...rows(0, 3_000, 'item@0'), ...rows(3_000, 2_000)]
  const { page, asked } = scan(table, 1_000)
  // 3,000 rows of another fold key, then a page: more asked than one page, never past the bound.
  expect(page.snapshots).toHaveLength(1_000)
  expect(page.snapshots[0]?.entity).toBe('item/e003000')
  expect(asked).toBeLessThanOrEqual(SNAPSHOT_SCAN_ROWS_MAX)
})

it('ends the page at the end of the table', () => {
  const { page } = scan(rows(0, 10), 1_000)
  expect(page.snapshots).toHaveLength(10)
  expect(page.next).toBeUndefined()
})
