export * from './log-store-contract.ts'
export * from './crdt-adapter-contract.ts'
