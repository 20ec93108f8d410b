/**
 * Partitioning: which physical log an entity's ledger lives in.
 *
 * Invariants:
 * 1. `partitionOf` is a stable function of (tenant, entity, partitions): the same on every
 *    platform and in every release. Changing it would scatter existing ledgers.
 * 2. A log's partition count is fixed when the log is created.
 */
import { checkTenant, parseEntityName } from './entity-name.ts'
import { LedgerError } from './errors.ts'
import { PARTITIONS_MAX } from './limits.ts'

/**
 * The partition of an entity: FNV-1a (32 bit) over the UTF-8 bytes of `tenant`, a zero byte,
 * and `entity`, modulo `partitions`.
 *
 * @example
 * partitionOf('acme', 'stock/s7:espresso-1kg', 16) // a number in 0..15, always the same
 */
export function partitionOf(tenant: string, entity: string, partitions: number): number {
  checkTenant(tenant)
  parseEntityName(entity)
  checkPartitions(partitions)
  let hash = 0x811c9dc5
  const step = (byte: number) => {
    hash ^= byte
    hash = Math.imul(hash, 0x01000193) >>> 0
  }
  utf8(tenant, step)
  step(0)
  utf8(entity, step)
  return hash % partitions
}

export function checkPartitions(partitions: unknown): number {
  if (
    typeof partitions !== 'number' ||
    !Number.isSafeInteger(partitions) ||
    partitions < 1 ||
    partitions > PARTITIONS_MAX
  ) {
    throw new LedgerError(
      'invalid_argument',
      `partitions must be an integer in 1..${PARTITIONS_MAX}`,
    )
  }
  return partitions
}

// UTF-8 without TextEncoder, which `core` may not use (no DOM, no Node). Entity names are
// ASCII by construction; tenants too. This stays correct for any string all the same.
function utf8(text: string, emit: (byte: number) => void): void {
  for (const char of text) {
    const cp = char.codePointAt(0) as number
    if (cp < 0x80) emit(cp)
    else if (cp < 0x800) {
      emit(0xc0 | (cp >> 6))
      emit(0x80 | (cp & 63))
    } else if (cp < 0x10000) {
      emit(0xe0 | (cp >> 12))
      emit(0x80 | ((cp >> 6) & 63))
      emit(0x80 | (cp & 63))
    } else {
      emit(0xf0 | (cp >> 18))
      emit(0x80 | ((cp >> 12) & 63))
      emit(0x80 | ((cp >> 6) & 63))
      emit(0x80 | (cp & 63))
    }
  }
}
