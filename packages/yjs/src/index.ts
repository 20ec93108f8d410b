export * from './limits.ts'
export type * from './crdt-client.ts'
export * from './yjs-entity.ts'
export * from './bind-ydoc.ts'
