import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { cloudflareTest } from '@cloudflare/vitest-pool-workers';
import type { TestProjectInlineConfiguration } from 'vitest/config';
import { makeTestModel, STANDARD_SPECS } from '../test/fixtures/models.js';
import { SMOLLM2 } from '../test/fixtures/chat-templates.js';
import { withMetadata } from '../test/fixtures/gguf-edit.js';
import { COPY_HEAD, makeTestHead } from '../test/fixtures/recycle-head.js';

/*
 * The Worker's two test projects, inline in the root vitest.config.ts. Not as config files: vitest takes a
 * project file's own directory as its root, and the Worker imports the engine from sdk/wasm/, outside workers/.
 */
const here = (path: string) => fileURLToPath(new URL(path, import.meta.url));

/** The model file with SmolLM2's ChatML template added, written beside it. */
function withChatTemplate(model: string): string {
  const path = model.replace(/\.gguf$/, '-smollm2-chat.gguf');
  if (existsSync(path)) return path;
  // Written aside, then renamed: a run stopped midway leaves no half file to be reused.
  writeFileSync(`${path}.partial`, withMetadata(readFileSync(model), [{ key: 'tokenizer.chat_template', type: 'string', value: SMOLLM2 }]));
  renameSync(`${path}.partial`, path);
  return path;
}

/**
 * Route tests inside workerd (the Workers runtime), fully offline. src/worker.test.ts drives the real
 * Worker entry with the bindings of wrangler.toml, overridden here: a small test model (TEST_CHAT_MODEL is the
 * same with SmolLM2's ChatML template) and a recycle head for it as data blobs that the test puts into the
 * local MODELS bucket, an API key and tight limits; Q4_0 and Q4_K_M models for the engine's two modules.
 */
export async function workersProject(): Promise<TestProjectInlineConfiguration> {
  const model = await makeTestModel(STANDARD_SPECS.q8_llama_tied);
  // Weights that the relaxed-SIMD kernels run (src/kernels.test.ts).
  const quantized = { TEST_Q4_0_MODEL: await makeTestModel(STANDARD_SPECS.q4_gpt2), TEST_Q4_K_M_MODEL: await makeTestModel(STANDARD_SPECS.q4_k_m_llama) };
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
            MAX_PROMPT_TOKENS: '200',
            MAX_QUEUE: '16',
          },
          dataBlobBindings: { TEST_MODEL: model, TEST_CHAT_MODEL: withChatTemplate(model), TEST_HEAD: makeTestHead(model, COPY_HEAD), ...quantized },
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

/**
 * End-to-end tests in Node: `wrangler dev` started by the test over real sockets, the OpenAI client, Chromium; and
 * the examples, run as their READMEs say.
 */
export const workersE2eProject: TestProjectInlineConfiguration = {
  test: {
    name: 'workers-e2e',
    include: ['workers/test/**/*.test.ts', 'examples/**/*.test.ts'],
    testTimeout: 180_000,
    hookTimeout: 180_000,
    pool: 'forks',
  },
};
