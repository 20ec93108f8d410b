// A `LogStore` that passes every call to `base` except `append`, which the test decides: the
// failure hook of the health tests (a full disk, a full queue, a slow commit) without touching
// any store's code.
import type { LogStore } from './log-store.ts'

/** `base` with its `append` replaced by `append` (which may call `base.append`). */
export function withAppend(base: LogStore, append: LogStore['append']): LogStore {
  return {
    partitions: base.partitions,
    append,
    readPartition: (...a) => base.readPartition(...a),
    readEntity: (...a) => base.readEntity(...a),
    head: (...a) => base.head(...a),
    client: (...a) => base.client(...a),
    identity: () => base.identity(),
    bumpGeneration: () => base.bumpGeneration(),
    partitionHeads: () => base.partitionHeads(),
    onCommit: (listener) => base.onCommit(listener),
    close: () => base.close(),
  }
}
