/**
 * What every store shares about ledger snapshots (`log-store.ts` guarantees 14–15): the checks
 * a state passes before it is kept, and where a fold starts from one.
 *
 * Invariants:
 * 1. A state is kept only if it is `Data` (core's `checkData`) and its encoding, as measured by
 *    the store, is at most `SNAPSHOT_STATE_BYTES_MAX` bytes.
 * 2. A fold starts from a snapshot only when its fold key is the type's own (`foldKey`): a
 *    changed reduce never starts from a state another reduce folded.
 */
import { checkData, foldKey } from '@ledgerline/core'
import type { Data, EntityType } from '@ledgerline/core'
import { SNAPSHOT_STATE_BYTES_MAX } from '@ledgerline/protocol'
import type { LedgerSnapshot } from '@ledgerline/protocol'
import type { PlanHead } from './plan-types.ts'
import type { SnapshotPut } from './log-store.ts'

/**
 * The state as `Data` with its encoded size, or the `skipped` outcome (invariant 1).
 *
 * @example
 * const checked = checkSnapshotState(snapshot.state, (d) => encode(d).byteLength)
 * if ('_tag' in checked) return checked
 */
export function checkSnapshotState(
  state: unknown,
  bytesOf: (state: Data) => number,
): { readonly state: Data; readonly bytes: number } | Extract<SnapshotPut, { _tag: 'skipped' }> {
  let data: Data
  try {
    data = checkData(state, 'state', 0)
  } catch {
    return { _tag: 'skipped', reason: 'not_data', bytes: 0 }
  }
  const bytes = bytesOf(data)
  if (bytes > SNAPSHOT_STATE_BYTES_MAX) return { _tag: 'skipped', reason: 'too_large', bytes }
  return { state: data, bytes }
}

/**
 * Where a fold of `type` starts: the snapshot when it is under the type's fold key
 * (invariant 2), else the type's initial state at version 0.
 *
 * @example
 * foldForward(type, foldStart(type, await store.snapshot(t, e, foldKey(type))), later)
 */
export function foldStart(
  type: EntityType<unknown>,
  snapshot: LedgerSnapshot | undefined,
): PlanHead {
  if (snapshot === undefined || snapshot.foldKey !== foldKey(type)) {
    return { version: 0, offset: 0, state: type.initial }
  }
  return { version: snapshot.version, offset: snapshot.offset, state: snapshot.state }
}
