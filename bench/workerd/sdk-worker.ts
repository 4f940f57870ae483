/// <reference types="@cloudflare/workers-types" />
/**
 * The benchmark's Worker: our engine through the SDK's public API (loadModel from R2 → generate), as the
 * product's Worker runs it but without the HTTP API around it, and the engine-internals measurements of
 * wasm-costs.ts, so that Node and workerd can be compared step by step. Bundled and served by miniflare.ts.
 *   POST /load  { key, contextLength }                 loads the GGUF at `key` from the MODELS bucket
 *   POST /run   { promptIds, maxTokens }               greedy generation from an empty KV cache → tokens and
 *                                                      wall ms to the first token and from it to the last
 *   POST /costs { key, contextLength, promptIds, … }   wasm-costs.ts on its own instance → its figures and
 *                                                      the engine's memory size (which only grows: the peak)
 */
import { loadModel, type Model } from 'recyclegpt';
import engine from '../../sdk/wasm/recyclegpt.wasm';
import { measureEngineCosts, type EngineCostsRequest } from '../wasm-costs.js';

interface Env {
  MODELS: R2Bucket;
}

let model: Model | undefined;

async function costs(env: Env, request: EngineCostsRequest & { key: string }): Promise<Response> {
  const object = await env.MODELS.get(request.key);
  if (!object) return Response.json({ error: `no object '${request.key}' in MODELS` }, { status: 404 });
  return Response.json(await measureEngineCosts(object.body, request, engine));
}

async function load(env: Env, key: string, contextLength: number): Promise<Response> {
  model?.dispose();
  model = undefined;
  const object = await env.MODELS.get(key);
  if (!object) return Response.json({ error: `no object '${key}' in MODELS` }, { status: 404 });
  const t0 = performance.now();
  model = await loadModel(object.body, { wasm: engine, contextLength });
  return Response.json({ ms: performance.now() - t0 });
}

async function run(promptIds: number[], maxTokens: number): Promise<Response> {
  if (!model) return Response.json({ error: 'POST /load first' }, { status: 409 });
  // A one-token prompt unlike the real one first, so that nothing of the last prompt's cache is reused.
  await model.complete([promptIds[0] === 0 ? 1 : 0], { maxTokens: 0 });
  // As bench/engines/types.ts's Stopwatch, by the only clock a Worker has (locally it runs; deployed it stands still between I/O).
  const marks = [performance.now()];
  const stream = model.generate(promptIds, { maxTokens, temperature: 0 });
  const tokens: number[] = [];
  for await (const token of stream) {
    if (tokens.length === 0) marks.push(performance.now());
    tokens.push(token.id);
  }
  marks.push(performance.now());
  const { finishReason } = await stream.stats;
  return Response.json({ tokens, finishReason, prefillMs: marks[1]! - marks[0]!, decodeMs: marks[2]! - marks[1]! });
}

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    try {
      if (url.pathname === '/load') {
        const { key, contextLength } = (await request.json()) as { key: string; contextLength: number };
        return await load(env, key, contextLength);
      }
      if (url.pathname === '/run') {
        const { promptIds, maxTokens } = (await request.json()) as { promptIds: number[]; maxTokens: number };
        return await run(promptIds, maxTokens);
      }
      if (url.pathname === '/costs') return await costs(env, (await request.json()) as EngineCostsRequest & { key: string });
      return Response.json({ error: `no route ${url.pathname}` }, { status: 404 });
    } catch (error) {
      return Response.json({ error: String((error as Error)?.stack ?? error) }, { status: 500 });
    }
  },
} satisfies ExportedHandler<Env>;
