import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['sdk/src/**/*.test.ts', 'test/**/*.test.ts', 'kernels/src/**/*.test.ts', 'training/**/*.test.ts'],
    testTimeout: 300_000,
    hookTimeout: 300_000,
    pool: 'forks',
  },
});
