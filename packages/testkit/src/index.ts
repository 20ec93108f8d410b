export * from './crdt-adapter-contract.ts'
