export * from './log-store-contract.ts'
export * from './crdt-adapter-contract.ts'
export * from './sim/index.ts'
export * from './postgres-cluster.ts'
