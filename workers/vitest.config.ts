import { fileURLToPath } from 'node:url';
import { cloudflareTest } from '@cloudflare/vitest-pool-workers';
import { defineConfig } from 'vitest/config';
import { makeTestModel, STANDARD_SPECS } from '../test/fixtures/models.js';
import { COPY_HEAD, makeTestHead } from '../test/fixtures/recycle-head.js';

/**
 * Route tests inside workerd (the Workers runtime), fully offline. src/worker.test.ts drives the real
 * Worker entry with the bindings of wrangler.toml, overridden here: a small test model and a recycle head
 * for it as data blobs that the test puts into the local MODELS bucket, an API key and tight limits.
 */
export default defineConfig(async () => {
  const model = await makeTestModel(STANDARD_SPECS.q8_llama_tied);
  return {
  plugins: [
    cloudflareTest({
      main: './workers/src/worker.ts',
      wrangler: { configPath: './wrangler.toml' },
      miniflare: {
        cf: false,
        bindings: {
          MODEL_KEY: 'test.gguf',
          RECYCLE_KEY: 'test-recycle.gguf',
          API_KEY: 'test-key',
          MAX_TOKENS: '64',
          MAX_PROMPT_TOKENS: '64',
          MAX_CONCURRENT: '16',
        },
        dataBlobBindings: { TEST_MODEL: model, TEST_HEAD: makeTestHead(model, COPY_HEAD) },
      },
    }),
  ],
  // The repository root, so that modules outside workers/ (the SDK's .wasm) resolve inside workerd.
  root: fileURLToPath(new URL('..', import.meta.url)),
  test: {
    name: 'workers',
    include: ['workers/src/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
  };
});
