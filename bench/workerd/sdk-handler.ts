/**
 * Our engine through the SDK's public API behind a fetch handler, so that the same code runs in workerd
 * (sdk-worker.ts) and in Node (sdk-node.ts) and is measured from outside the same way (runtimes.ts), and
 * the engine-internals measurements of wasm-costs.ts:
 *   POST /load  { key, contextLength, kernels? }       loads the GGUF named `key` (LoadOptions.kernels: which engine
 *                                                      module; default the SDK's choice) → ms and the kernels run
 *   POST /run   { promptIds, maxTokens }               greedy generation from an empty KV cache → tokens and
 *                                                      wall ms to the first token and from it to the last
 *   POST /costs { key, contextLength, promptIds, … }   wasm-costs.ts on its own instance → its figures and
 *                                                      the engine's memory size (which only grows: the peak)
 */
import { loadModel, type EngineModules, type KernelChoice, type Model } from '../../sdk/src/index.js';
import type { ModelSource } from '../../sdk/src/gguf/source.js';
import { measureEngineCosts, type EngineCostsRequest } from '../wasm-costs.js';

/** Opens the GGUF named `key` (an R2 object, a file, …); undefined when there is none. */
export type OpenModel = (key: string) => Promise<ModelSource | undefined>;

/** `wasm`: the engine modules, as LoadOptions.wasm takes them (a Worker imports both; Node reads the SDK's files). */
export function makeSdkHandler(wasm: EngineModules | undefined, open: OpenModel): (request: Request) => Promise<Response> {
  let model: Model | undefined;

  const source = async (key: string) => {
    const found = await open(key);
    if (!found) throw new Error(`no model '${key}'`);
    return found;
  };

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

  return async function handle(request: Request): Promise<Response> {
    const path = new URL(request.url).pathname;
    try {
      if (path === '/health') return Response.json({ ok: true });
      const body = (await request.json()) as Record<string, unknown>;
      if (path === '/load') {
        model?.dispose();
        model = undefined;
        const t0 = performance.now();
        const kernels = body.kernels as KernelChoice | undefined;
        model = await loadModel(await source(body.key as string), { wasm, kernels, contextLength: body.contextLength as number });
        return Response.json({ ms: performance.now() - t0, kernels: model.info.kernels });
      }
      if (path === '/run') return await run(body.promptIds as number[], body.maxTokens as number);
      if (path === '/costs') {
        const costs = await measureEngineCosts(await source(body.key as string), body as unknown as EngineCostsRequest, wasm);
        return Response.json(costs);
      }
      return Response.json({ error: `no route ${path}` }, { status: 404 });
    } catch (error) {
      return Response.json({ error: String((error as Error)?.stack ?? error) }, { status: 500 });
    }
  };
}
