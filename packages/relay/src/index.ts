export * from './log-store.ts'
