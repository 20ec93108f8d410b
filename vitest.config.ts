import { defineConfig } from 'vitest/config'

// One runner for every package: tests sit beside the code as `*.test.ts`.
// Cross-package imports resolve through each package's `exports` map to `dist/`,
// so `npm test` builds first (`tsc -b`).
export default defineConfig({
  test: {
    include: ['packages/*/src/**/*.test.ts', 'demo/src/**/*.test.ts', 'examples/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Real sockets and child processes: keep files from starving each other on 2 cores.
    maxWorkers: 2,
  },
})
