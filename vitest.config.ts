import { defineConfig } from 'vitest/config';
import { KERNELS_SOURCE } from './kernels/src/testing/source-alias.js';

// Three projects: Node-side tests, the Worker routes inside workerd, and end-to-end tests
// against a running `wrangler dev` (these need `npm run build` first, which `npm test` does).
export default defineConfig({
  test: {
    projects: [
      {
        extends: true,
        test: {
          name: 'node',
          alias: KERNELS_SOURCE,
          include: ['sdk/src/**/*.test.ts', 'test/**/*.test.ts', 'kernels/src/**/*.test.ts', 'training/**/*.test.ts', 'bench/**/*.test.ts'],
          testTimeout: 300_000,
          hookTimeout: 300_000,
          pool: 'forks',
        },
      },
      'workers/vitest.config.ts',
      'workers/vitest.e2e.config.ts',
    ],
  },
});
