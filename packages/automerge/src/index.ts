export * from './limits.ts'
export type * from './crdt-client.ts'
export * from './automerge-entity.ts'
export * from './bind-automerge.ts'
