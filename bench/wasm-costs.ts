/**
 * Two engine-level costs measured below the public API, through the SDK's own Context and WasmLlama:
 *  - the JS↔WASM crossing share of plain decoding: how much of a decode step is spent outside the
 *    WASM forward pass (sampling, streaming text, the loop), and what the export calls themselves cost;
 *  - the batched-pass cost t(n)/t(1): what verifying n tokens in one forward costs relative to one,
 *    the price recycled decoding pays per full pass.
 * The engine's exports are wrapped (not modified) to count calls and time rg_forward from the JS side.
 */
import { WasmLlama, compileEngine, instantiateEngine, type EngineExports } from '../sdk/src/binding.js';
import { Context, decode } from '../sdk/src/generate.js';
import { loadGGUF } from '../sdk/src/gguf/load.js';
import { modelShape, tensorSlot } from '../sdk/src/model-file.js';
import { createTokenizer } from '../sdk/src/tokenizer/index.js';
import type { GenerationStats } from '../sdk/src/types.js';

/** As loadModel: tokens per forward pass. */
const MAX_BATCH = 32;
const BARE_CALLS = 1_000_000;

export interface CrossingShare {
  /** Export calls per forward pass while decoding (rg_forward, rg_logits, …). */
  callsPerToken: number;
  /** Cost of one call to a trivial export (rg_last_error), in nanoseconds. */
  bareCallNs: number;
  /** callsPerToken × bareCallNs / decode step time. */
  crossingShare: number;
  /** Decode step time spent outside rg_forward (sampling, detokenizing, loop, crossings) / decode step time. */
  jsShare: number;
  decodeStepMs: number;
  forwardMs: number;
}

export interface BatchCost {
  /** Median ms of one forward of n tokens (all rows' logits, as a verifying pass needs), keyed by n. */
  forwardMs: Record<number, number>;
  /** t(n) / t(1), keyed by n. */
  ratio: Record<number, number>;
}

/** Engine exports that count every call and time rg_forward. */
class InstrumentedExports {
  calls = 0;
  forwardTimes: number[] = [];
  readonly exports: EngineExports;

  constructor(readonly raw: EngineExports) {
    const wrapped: Record<string, unknown> = { memory: raw.memory };
    for (const [name, value] of Object.entries(raw)) {
      if (typeof value !== 'function') continue;
      wrapped[name] = (...args: number[]) => {
        this.calls++;
        if (name !== 'rg_forward') return value(...args);
        const t0 = performance.now();
        const status = value(...args);
        this.forwardTimes.push(performance.now() - t0);
        return status;
      };
    }
    this.exports = wrapped as unknown as EngineExports;
  }

  reset(): void {
    this.calls = 0;
    this.forwardTimes = [];
  }
}

/** Loads a GGUF the way loadModel does, but keeps the Context and the instrumented exports. */
export async function loadInstrumented(path: string, contextLength: number): Promise<{ context: Context<WasmLlama>; engine: InstrumentedExports }> {
  const engine = new InstrumentedExports(await instantiateEngine(await compileEngine()));
  let context: Context<WasmLlama> | undefined;
  await loadGGUF(path, {
    begin(header) {
      const llama = new WasmLlama(engine.exports, { ...modelShape(header), contextLength, kvType: 'f16', maxBatch: MAX_BATCH, sequences: 1 });
      context = new Context(llama, createTokenizer(header.metadata));
    },
    reserve(tensor) {
      const slot = tensorSlot(tensor, context!.llama.config);
      return context!.llama.reserve(slot.kind, slot.layer, tensor.type, slot.rows, slot.cols, tensor.byteSize, tensor.name);
    },
    end() {
      context!.llama.ready();
    },
  });
  return { context: context!, engine };
}

/**
 * Greedy decoding of `nTokens` after `promptIds` with the SDK's decode loop, measured on its second run
 * (the first lets V8 tier the WASM code up). The prompt is prefilled beforehand so only decode steps count.
 */
export async function measureCrossingShare(context: Context, engine: InstrumentedExports, promptIds: number[], nTokens: number): Promise<CrossingShare> {
  await decodeOnce(context, engine, promptIds, nTokens);
  const stats = await decodeOnce(context, engine, promptIds, nTokens);
  // The first forward re-runs the last prompt token (the cached prefix is reused); the rest are decode steps.
  const decodeForwardMs = engine.forwardTimes.slice(1).reduce((a, b) => a + b, 0);
  const callsPerToken = engine.calls / engine.forwardTimes.length;
  const decodeStepMs = stats.decodeMs / stats.fullPasses;
  const bareCallNs = timeBareCall(engine.raw);
  return {
    callsPerToken,
    bareCallNs,
    crossingShare: (callsPerToken * bareCallNs) / 1e6 / decodeStepMs,
    jsShare: 1 - decodeForwardMs / stats.decodeMs,
    decodeStepMs,
    forwardMs: decodeForwardMs / stats.fullPasses,
  };
}

async function decodeOnce(context: Context, engine: InstrumentedExports, promptIds: number[], nTokens: number): Promise<GenerationStats> {
  await context.prefill(promptIds);
  engine.reset();
  let stats: GenerationStats | undefined;
  for await (const _ of decode(context, promptIds, { maxTokens: nTokens, temperature: 0 }, (s) => (stats = s)));
  if (!stats || stats.fullPasses === 0) throw new Error('the decode loop reported no decode passes');
  return stats;
}

function timeBareCall(raw: EngineExports): number {
  const t0 = performance.now();
  for (let i = 0; i < BARE_CALLS; i++) raw.rg_last_error();
  return ((performance.now() - t0) * 1e6) / BARE_CALLS;
}

/** Median time of a forward of n tokens at position `pos` for each n (sizes include 1), interleaved so load noise hits all sizes alike. */
export function measureBatchCost(context: Context, tokenIds: number[], pos: number, sizes: number[], reps: number): BatchCost {
  const times: Record<number, number[]> = Object.fromEntries(sizes.map((n) => [n, []]));
  for (let r = -1; r < reps; r++) {
    for (const n of sizes) {
      const t0 = performance.now();
      context.llama.forward(tokenIds.slice(0, n), pos, 0);
      if (r >= 0) times[n].push(performance.now() - t0); // round -1 warms up
    }
  }
  const forwardMs = Object.fromEntries(sizes.map((n) => [n, median(times[n])]));
  const ratio = Object.fromEntries(sizes.map((n) => [n, forwardMs[n] / forwardMs[1]]));
  return { forwardMs, ratio };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}
