/**
 * Cold start of the product's Worker (workers/src/worker.ts, bundled as `wrangler deploy` would) under
 * Miniflare: a new workerd process, then the first request, which streams the model from local R2 into
 * the engine, prefills the prompt and generates one token.
 */
import { basename, join } from 'node:path';
import { requestJson } from './http.js';
import { bundleProductWorker, startWorker } from './miniflare.js';

export interface ColdStart {
  /** From starting workerd to the Worker accepting requests (process start, script and engine compile). */
  readyMs: number;
  /** From the first request to its answer: load from R2, prefill, one token. */
  firstTokenMs: number;
  promptTokens: number;
  /** Peak resident memory of the workerd process afterwards, MiB. */
  peakRssMiB: number;
  /**
   * The Worker's answer where it refused the model at its default MEMORY_LIMIT_MB (128, a deployed isolate's
   * memory); the figures above are then measured with the limit lifted (workerd enforces none locally).
   */
  refused?: string;
}

export async function measureColdStart(modelPath: string, promptIds: number[], contextLength: number, scratchDir: string): Promise<ColdStart> {
  const script = bundleProductWorker(join(scratchDir, 'product-bundle'));
  const key = basename(modelPath);
  const bindings: Record<string, string> = { MODEL_KEY: key, MODEL_ID: 'bench', CONTEXT_LENGTH: String(contextLength) };
  const options = { scriptPath: script, persistDir: join(scratchDir, 'state'), bindings };
  // Put the model into local R2 first, from a Worker that is then thrown away.
  const uploader = await startWorker(options);
  await uploader.upload(key, modelPath);
  await uploader.dispose();

  const first = await coldRequest(options, promptIds);
  if (first.status === 200) return first.result;
  const refusal = /"message":"([^"]*)"[^]*"code":"model_unavailable"/.exec(first.text);
  if (first.status !== 503 || !refusal) throw new Error(`the product Worker answered ${first.status}: ${first.text.slice(0, 2000)}`);
  const lifted = await coldRequest({ ...options, bindings: { ...bindings, MEMORY_LIMIT_MB: '4096' } }, promptIds);
  if (lifted.status !== 200) throw new Error(`the product Worker answered ${lifted.status} with MEMORY_LIMIT_MB lifted: ${lifted.text.slice(0, 2000)}`);
  return { ...lifted.result, refused: refusal[1]! };
}

/** A new workerd process, then the first request: its timings, or the answer where it is not a 200. */
async function coldRequest(options: Parameters<typeof startWorker>[0], promptIds: number[]): Promise<{ status: number; text: string; result: ColdStart }> {
  const t0 = performance.now();
  const worker = await startWorker(options);
  const t1 = performance.now();
  try {
    const { status, text } = await requestJson(worker.url, '/v1/completions', { model: 'bench', prompt: promptIds, max_tokens: 1, temperature: 0 });
    const t2 = performance.now();
    return { status, text, result: { readyMs: t1 - t0, firstTokenMs: t2 - t1, promptTokens: promptIds.length, peakRssMiB: worker.peakRssMiB() } };
  } finally {
    await worker.dispose();
  }
}
