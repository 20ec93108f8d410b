/**
 * The validators of bootstrap's parts (`subscribe.bootstrap`, `snapshots`, `fetch`, `fetched`;
 * messages.ts invariant 6), apart from `validate.ts` so each file reads in one sitting.
 *
 * Invariants:
 * 1. As `validate.ts`: a fresh object of known fields, or a `ProtocolError` naming the path.
 * 2. A snapshot's state is `Data` (core's `checkData`) of at most `SNAPSHOT_STATE_BYTES_MAX`
 *    encoded bytes; a fold key is `type@version` with a positive version.
 */
import { checkData, checkPattern, ENTITY_NAME_LENGTH_MAX, parseEntityName } from '@ledgerline/core'
import {
  BOOTSTRAP_FOLD_KEYS_MAX,
  BOOTSTRAP_HORIZON_RULES_MAX,
  PARTITIONS_MAX,
  SNAPSHOT_STATE_BYTES_MAX,
} from './limits.ts'
import type { BootstrapRequest, LedgerSnapshot } from './messages.ts'
import type { Fields } from './validate-fields.ts'
import {
  bad,
  core,
  entryDataBytes,
  integer,
  list,
  own,
  record,
  time,
  tooMany,
} from './validate-fields.ts'

export function entityName(m: Fields, path: string): string {
  const name = own(m, 'entity')
  core(`${path}.entity`, () => parseEntityName(name))
  return name as string
}

export function bootstrapRequest(value: unknown, path: string): BootstrapRequest {
  const m = record(value, path)
  return {
    foldKeys: list(
      m,
      'foldKeys',
      path,
      BOOTSTRAP_FOLD_KEYS_MAX,
      'BOOTSTRAP_FOLD_KEYS_MAX',
      (v, at) => foldKeyText(v, at),
    ),
    whole: list(
      m,
      'whole',
      path,
      BOOTSTRAP_HORIZON_RULES_MAX,
      'BOOTSTRAP_HORIZON_RULES_MAX',
      (v, at) => {
        const r = record(v, at)
        return {
          pattern: core(`${at}.pattern`, () => checkPattern(own(r, 'pattern'))),
          since: time(r, 'since', at),
        }
      },
    ),
  }
}

const FOLD_KEY_RE = /^[^@\s]+@[1-9][0-9]*$/

function foldKeyText(value: unknown, path: string): string {
  if (
    typeof value !== 'string' ||
    value.length > ENTITY_NAME_LENGTH_MAX ||
    !FOLD_KEY_RE.test(value)
  ) {
    throw bad(path, "must be a fold key, 'type@version'")
  }
  return value
}

export function ledgerSnapshot(value: unknown, path: string): LedgerSnapshot {
  const m = record(value, path)
  const state = core(`${path}.state`, () => checkData(own(m, 'state'), 'state', 0))
  const bytes = entryDataBytes(state)
  if (bytes > SNAPSHOT_STATE_BYTES_MAX) {
    throw tooMany(`${path}.state`, bytes, SNAPSHOT_STATE_BYTES_MAX, 'SNAPSHOT_STATE_BYTES_MAX')
  }
  return {
    entity: entityName(m, path),
    foldKey: foldKeyText(own(m, 'foldKey'), `${path}.foldKey`),
    version: integer(m, 'version', path, 1, Number.MAX_SAFE_INTEGER),
    partition: integer(m, 'partition', path, 0, PARTITIONS_MAX - 1),
    offset: integer(m, 'offset', path, 1, Number.MAX_SAFE_INTEGER),
    committedAt: time(m, 'committedAt', path),
    state,
  }
}
