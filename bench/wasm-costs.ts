/**
 * Two engine-level costs measured below the public API, through the SDK's own Context and WasmLlama:
 *  - the JS↔WASM crossing share of plain decoding: how much of a decode step is spent outside the
 *    WASM forward pass (sampling, streaming text, the loop), and what the export calls themselves cost;
 *  - the batched-pass cost t(n)/t(1): what verifying n tokens in one forward costs relative to one,
 *    the price recycled decoding pays per full pass.
 * The engine's exports are wrapped (not modified) to count calls and time rg_forward from the JS side.
 */
import { wasmMaxBatch } from '../sdk/src/backend.js';
import { WasmLlama, kvWord, openEngine, type EngineExports, type EngineModules, type EngineSource } from '../sdk/src/binding.js';
import { Context, decode } from '../sdk/src/generate.js';
import { loadGGUF } from '../sdk/src/gguf/load.js';
import type { ModelSource } from '../sdk/src/gguf/source.js';
import { modelShape, tensorSlot } from '../sdk/src/model-file.js';
import { createTokenizer } from '../sdk/src/tokenizer/index.js';
import type { GenerationStats } from '../sdk/src/types.js';

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
export class InstrumentedExports {
  calls = 0;
  forwardTimes: number[] = [];
  /** Tensor bytes loaded into the engine. */
  reservedBytes = 0;
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

/**
 * Loads a GGUF the way loadModel does, but keeps the Context and the instrumented exports. `wasm`: the
 * engine modules where they cannot be read from disk (a Worker imports them), chosen as loadModel chooses.
 */
export async function loadInstrumented(source: ModelSource, contextLength: number, wasm?: EngineSource | EngineModules): Promise<{ context: Context<WasmLlama>; engine: InstrumentedExports }> {
  const engine = new InstrumentedExports((await openEngine(wasm)).exports);
  let context: Context<WasmLlama> | undefined;
  await loadGGUF(source, {
    begin(header) {
      const shape = modelShape(header);
      const llama = new WasmLlama(engine.exports, { ...shape, contextLength, kvType: 'f16', maxBatch: wasmMaxBatch(shape.vocabSize), sequences: 1 });
      context = new Context(llama, createTokenizer(header.metadata));
    },
    reserve(tensor) {
      engine.reservedBytes += tensor.byteSize;
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

/**
 * Fastest time of a forward of n tokens at position `pos` for each n (sizes include 1), interleaved so that
 * load from other jobs hits all sizes alike; the fastest shrugs off the rounds another job interrupted.
 */
export function measureBatchCost(context: Context, tokenIds: number[], pos: number, sizes: number[], reps: number): BatchCost {
  const forwardMs: Record<number, number> = Object.fromEntries(sizes.map((n) => [n, Infinity]));
  for (let r = -1; r < reps; r++) {
    for (const n of sizes) {
      const t0 = performance.now();
      context.llama.forward(tokenIds.slice(0, n), pos, 0);
      if (r >= 0) forwardMs[n] = Math.min(forwardMs[n]!, performance.now() - t0); // round -1 warms up
    }
  }
  const ratio = Object.fromEntries(sizes.map((n) => [n, forwardMs[n]! / forwardMs[1]!]));
  return { forwardMs, ratio };
}

/** The engine's WebAssembly memory against what the model needs: weights plus KV cache. */
export interface MemoryUse {
  /** memory.buffer.byteLength after a decode (WebAssembly memory only grows, so this is the peak). */
  peakBytes: number;
  /** Tensor bytes in the GGUF. */
  weightBytes: number;
  /** KV cache bytes at the context length (as the engine keeps it: f16, or f16 values widened to f32). */
  kvBytes: number;
}

export interface EngineCostsRequest {
  contextLength: number;
  promptIds: number[];
  decodeTokens: number;
  batchSizes: number[];
  batchReps: number;
}

export interface EngineCosts {
  crossing: CrossingShare;
  batch: BatchCost;
  memory: MemoryUse;
}

/** Everything this file measures, on one freshly loaded instance; in Node and inside a Worker alike. */
export async function measureEngineCosts(source: ModelSource, request: EngineCostsRequest, wasm?: EngineSource | EngineModules): Promise<EngineCosts> {
  const { context, engine } = await loadInstrumented(source, request.contextLength, wasm);
  try {
    const crossing = await measureCrossingShare(context, engine, request.promptIds, request.decodeTokens);
    const batch = measureBatchCost(context, request.promptIds, request.promptIds.length, request.batchSizes, request.batchReps);
    const { config } = context.llama;
    const kvValueBytes = kvWord(config) === 2 ? 4 : 2;
    return {
      crossing,
      batch,
      memory: {
        peakBytes: engine.raw.memory.buffer.byteLength,
        weightBytes: engine.reservedBytes,
        kvBytes: 2 * config.layers * config.contextLength * config.kvHeads * config.headDim * kvValueBytes,
      },
    };
  } finally {
    context.llama.free();
  }
}
