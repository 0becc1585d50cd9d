import { defineConfig } from 'vitest/config';

// Tests import the package by name ('iommu-sim'), which resolves through package.json
// "exports" to the built dist/ — the same compiled JavaScript the workers run. Unit tests
// of internals import the TypeScript sources directly.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    maxWorkers: 2,
  },
});
