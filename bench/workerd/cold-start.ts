/**
 * Cold start of the product's Worker (workers/src/worker.ts, bundled as `wrangler deploy` would) under
 * Miniflare: a new workerd process, then the first request, which streams the model from local R2 into
 * the engine, prefills the prompt and generates one token.
 */
import { basename, join } from 'node:path';
import { callJson } from './http.js';
import { bundleProductWorker, startWorker } from './miniflare.js';

export interface ColdStart {
  /** From starting workerd to the Worker accepting requests (process start, script and engine compile). */
  readyMs: number;
  /** From the first request to its answer: load from R2, prefill, one token. */
  firstTokenMs: number;
  promptTokens: number;
  /** Peak resident memory of the workerd process afterwards, MiB. */
  peakRssMiB: number;
}

export async function measureColdStart(modelPath: string, promptIds: number[], contextLength: number, scratchDir: string): Promise<ColdStart> {
  const script = bundleProductWorker(join(scratchDir, 'product-bundle'));
  const key = basename(modelPath);
  const options = { scriptPath: script, persistDir: join(scratchDir, 'state'), bindings: { MODEL_KEY: key, MODEL_ID: 'bench', CONTEXT_LENGTH: String(contextLength) } };
  // Put the model into local R2 first, from a Worker that is then thrown away.
  const uploader = await startWorker(options);
  await uploader.upload(key, modelPath);
  await uploader.dispose();

  const t0 = performance.now();
  const worker = await startWorker(options);
  const t1 = performance.now();
  try {
    await callJson(worker.url, '/v1/completions', { model: 'bench', prompt: promptIds, max_tokens: 1, temperature: 0 });
    const t2 = performance.now();
    return { readyMs: t1 - t0, firstTokenMs: t2 - t1, promptTokens: promptIds.length, peakRssMiB: worker.peakRssMiB() };
  } finally {
    await worker.dispose();
  }
}
