export * from './log-store.ts'
export * from './limits.ts'
export * from './relay-error.ts'
export * from './sqlite-store.ts'
