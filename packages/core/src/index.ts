export * from './errors.ts'
export * from './limits.ts'
export * from './entity-name.ts'
export * from './entry.ts'
export * from './ids.ts'
export * from './hlc.ts'
export * from './schema.ts'
export * from './kinds.ts'
export type * from './standard-schema.ts'
export * from './fold.ts'
export * from './decide.ts'
export {
  buildCorrections,
  crdtSnapshotKind,
  isCrdtSnapshot,
  isLogCorrection,
} from './corrections.ts'
export * from './partition.ts'
export * from './digest.ts'
export * from './crdt-parts.ts'
