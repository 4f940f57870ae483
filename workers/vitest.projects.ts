import { fileURLToPath } from 'node:url';
import { cloudflareTest } from '@cloudflare/vitest-pool-workers';
import type { TestProjectInlineConfiguration } from 'vitest/config';
import { makeTestModel, STANDARD_SPECS } from '../test/fixtures/models.js';
import { COPY_HEAD, makeTestHead } from '../test/fixtures/recycle-head.js';

/*
 * The Worker's two test projects, inline in the root vitest.config.ts. Not as config files: vitest takes a
 * project file's own directory as its root, and the Worker imports the engine from sdk/wasm/, outside workers/.
 */
const here = (path: string) => fileURLToPath(new URL(path, import.meta.url));

/**
 * Route tests inside workerd (the Workers runtime), fully offline. src/worker.test.ts drives the real
 * Worker entry with the bindings of wrangler.toml, overridden here: a small test model and a recycle head
 * for it as data blobs that the test puts into the local MODELS bucket, an API key and tight limits.
 */
export async function workersProject(): Promise<TestProjectInlineConfiguration> {
  const model = await makeTestModel(STANDARD_SPECS.q8_llama_tied);
  return {
    plugins: [
      cloudflareTest({
        main: here('src/worker.ts'),
        wrangler: { configPath: here('../wrangler.toml') },
        miniflare: {
          cf: false,
          bindings: {
            MODEL_KEY: 'test.gguf',
            RECYCLE_KEY: 'test-recycle.gguf',
            API_KEY: 'test-key',
            MAX_TOKENS: '64',
            MAX_PROMPT_TOKENS: '64',
            MAX_QUEUE: '16',
          },
          dataBlobBindings: { TEST_MODEL: model, TEST_HEAD: makeTestHead(model, COPY_HEAD) },
        },
      }),
    ],
    test: {
      name: 'workers',
      include: ['workers/src/**/*.test.ts'],
      testTimeout: 120_000,
      hookTimeout: 120_000,
    },
  };
}

/** End-to-end tests in Node: `wrangler dev` started by the test over real sockets, the OpenAI client, Chromium. */
export const workersE2eProject: TestProjectInlineConfiguration = {
  test: {
    name: 'workers-e2e',
    include: ['workers/test/**/*.test.ts'],
    testTimeout: 180_000,
    hookTimeout: 180_000,
    pool: 'forks',
  },
};
