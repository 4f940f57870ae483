/**
 * What the decode loop and the loader need from an engine, and which engine to use. The WASM model answers
 * synchronously; the WebGPU one (sdk/src/backend-webgpu.ts, imported only when chosen) returns promises.
 */
import { WasmLlama, openEngine, type EngineModules, type EngineSource, type WeightsNeed } from './binding.js';
import type { ModelConfig, RecycleConfig } from './contract/config.js';
import { BACKEND_CHOICES, isBackendChoice, type BackendChoice, type BackendName, type KernelChoice, type KernelSet } from './contract/modes.js';
import { InvalidArgumentError, RecycleGPTError } from './errors.js';
import { runtime } from './runtime.js';

export type { BackendChoice, BackendName };

/** A model with its KV caches, and optionally a recycle head with its own. */
export interface Backend {
  readonly config: ModelConfig;
  /** Independent KV caches (base and head alike); forwards use the selected one. */
  readonly sequences: number;
  /** Selects KV cache `sequence` (0 ≤ sequence < sequences) for later forwards; nothing is copied. */
  selectSequence(sequence: number): void;
  /** Copies positions 0…positions-1 of KV cache `from` into `to` (base and head alike); where sequences > 1. */
  copySequence?(from: number, to: number, positions: number): void | Promise<void>;
  /** Rows one recycle pass takes at most; 0 without a head. */
  readonly recycleMaxBatch: number;
  /**
   * Runs `tokens` at positions pos… (their KV entries are (over)written) and keeps rows logitsFrom… (none when
   * logitsFrom = n) of its `output`: logits (the default), or only their argmax, which a GPU reads back alone.
   */
  forward(tokens: ArrayLike<number>, pos: number, logitsFrom: number, output?: ForwardOutput): void | Promise<void>;
  /** Logits of row `row` (counted from logitsFrom) of the last forward, which kept logits; valid until the next call. */
  logits(row?: number): Float32Array;
  /** Final-normed hidden state of row `row` of the last forward (every row); where present (WASM), embed() runs. */
  hidden?(row?: number): Float32Array;
  /** The argmax (ties to the lower id) of row `row` of the last forward, any output. */
  argmax(row?: number): number;
  /** The largest k a `{ topK }` forward takes; absent where the backend reads logits back anyway (WASM). */
  readonly maxTopK?: number;
  /** Row `row`'s candidates of the last forward, which kept `{ topK }`. */
  candidates?(row?: number): TopCandidates;
  /**
   * Runs the head on `tokens` at positions pos…, each with the hidden state of consecutive rows from `fromRow`
   * of the last base forward ('base') or of the last head forward ('head', for chained drafts).
   */
  recycleForward(source: 'base' | 'head', fromRow: number, tokens: ArrayLike<number>, pos: number, logitsFrom: number, output?: ForwardOutput): void | Promise<void>;
  /**
   * Optional (WASM): limits the head's logits to these token ids, or lifts the limit (undefined). A guess is only
   * ever checked, so a head that scores only likely tokens changes acceptance, never the output of `exact`/`chain`.
   */
  recycleShortlist?(ids: readonly number[] | undefined): void;
  /** A head logits row over the whole vocabulary (-Infinity outside a shortlist). */
  recycleLogits(row?: number): Float32Array;
  recycleArgmax(row?: number): number;
  /**
   * Optional, where every pass is a round trip (WebGPU): drafting and its check as one. The head runs on `headTokens`
   * at positions pos - headTokens.length + 1 … pos (hidden rows from `fromRow` of the last base forward) and drafts
   * `drafts` tokens by argmax, chaining; the base runs [last head token, ...drafts] at `pos` and keeps rows
   * logitsFrom… as `output` ('argmax' or `{ topK }`) says. Returns the drafts; afterwards the backend stands as after
   * those passes run separately (`argmax()`/`candidates()` read the check, hidden rows are the check's).
   */
  draftAndCheck?(fromRow: number, headTokens: number[], pos: number, drafts: number, logitsFrom: number, output: 'argmax' | { topK: number }): Promise<number[]>;
  free(): void;
}

/** What a forward keeps of its logits rows: all of them, the argmax, or the k largest (where `maxTopK` allows). */
export type ForwardOutput = 'logits' | 'argmax' | { topK: number };

/** A row's k largest logits, largest first (ties: lower id first), with their token ids. */
export interface TopCandidates {
  ids: ArrayLike<number>;
  logits: ArrayLike<number>;
}

/** A Backend being loaded: tensors are reserved, their bytes written into the returned view before the next call. */
export interface LoadingBackend extends Backend {
  /** Bytes of KV cache one sequence takes: the base's, plus the head's once attached. */
  readonly kvBytesPerSequence: number;
  reserve(kind: number, layer: number, type: number, rows: number, cols: number, byteSize: number, name: string): Uint8Array;
  ready(): void | Promise<void>;
  attachRecycle(config: RecycleConfig): void;
  recycleReserve(kind: number, layer: number, type: number, rows: number, cols: number, byteSize: number, name: string): Uint8Array;
  recycleReady(): void | Promise<void>;
}

/** WebGPU's adapter, as far as choosing a backend needs it (typed here so the SDK does not need WebGPU's types). */
export interface AdapterLike {
  limits: { maxStorageBufferBindingSize: number; maxBufferSize: number };
}

export interface OpenedBackend {
  backend: LoadingBackend;
  name: BackendName;
  /** Why this backend: asked for, or what ruled WebGPU out. */
  reason: string;
  /** WASM: the engine module's kernels, and why those (see openEngine). */
  kernels?: { set: KernelSet; reason: string };
}

/** Which WASM engine module to run (LoadOptions.wasm, LoadOptions.kernels). */
export interface EngineChoice {
  wasm?: EngineSource | EngineModules;
  kernels?: KernelChoice;
}

/**
 * Tokens per WASM forward. The engine keeps logits for every row of a pass (maxBatch × vocab × 4 bytes), so the
 * batch is the largest power of two in 8..32 whose logits fit LOGITS_BYTES: 32 at small vocabularies, 16 at
 * SmolLM2's 49k, 8 at Qwen's 152k. Prefill speed does not depend on it (the kernels take 3 tokens per sweep of
 * the weights; measured the same at 8, 16 and 32 on the 135M shape); drafts per pass are at most maxBatch − 1.
 */
export function wasmMaxBatch(vocabSize: number): number {
  let batch = 32;
  while (batch > 8 && batch * vocabSize * 4 > LOGITS_BYTES) batch /= 2;
  return batch;
}
const LOGITS_BYTES = 4 << 20;

/** What a model file needs of a backend: its weights' bytes, and each (tensor kind, ggml type) it holds. */
export interface ModelNeeds {
  weights: WeightsNeed;
  tensors: ReadonlyArray<{ kind: number; type: number }>;
}

/**
 * Creates the backend `choice` asks for; `auto` takes WebGPU when an adapter exists and the model fits its limits
 * and its kernels (architecture, tensor types), else WASM, saying why in `reason`.
 */
export async function openBackend(choice: BackendChoice, config: Omit<ModelConfig, 'maxBatch'>, wasm: EngineChoice = {}, needs?: ModelNeeds): Promise<OpenedBackend> {
  if (!isBackendChoice(choice)) {
    throw new InvalidArgumentError(`backend must be ${BACKEND_CHOICES.map((c) => `'${c}'`).join(', ')}, got ${String(choice)}`);
  }
  const openWasm = async (reason: string): Promise<OpenedBackend> => {
    const engine = await openEngine(wasm.wasm, wasm.kernels);
    const backend = new WasmLlama(engine.exports, { ...config, maxBatch: wasmMaxBatch(config.vocabSize) }, needs?.weights);
    return { backend, name: 'wasm', reason, kernels: { set: engine.kernels, reason: engine.reason } };
  };
  if (choice === 'wasm') return openWasm('asked for');
  const found = await findAdapter();
  if (typeof found === 'string') {
    if (choice === 'webgpu') throw new RecycleGPTError('ENGINE', `backend 'webgpu' needs WebGPU, but ${found}; use backend 'wasm' or 'auto'`);
    return openWasm(found);
  }
  // Only now, with WebGPU at hand, is the kernels package loaded (where the package's entry registered it).
  let webgpu: typeof import('./backend-webgpu.js');
  try {
    if (!runtime.webgpu) throw new Error("this build of the SDK has no WebGPU backend (the Workers entry); import the package's browser or Node entry");
    webgpu = await runtime.webgpu();
  } catch (cause) {
    const missing = `the WebGPU kernels (@recyclegpt/kernels) could not be loaded: ${(cause as Error).message}`;
    if (choice === 'webgpu') throw new RecycleGPTError('ENGINE', `backend 'webgpu' needs ${missing.slice(4)}; install @recyclegpt/kernels or use backend 'wasm'`, { cause });
    return openWasm(missing);
  }
  // The kernels keep one KV sequence: a model there caches one conversation's prefix.
  const gpuConfig = { ...config, sequences: 1 };
  const lacks = needs && webgpu.unsupportedProblem(gpuConfig, needs);
  if (lacks) {
    if (choice === 'webgpu') throw new RecycleGPTError('GGUF_UNSUPPORTED', `backend 'webgpu' cannot run this model: ${lacks}; use backend 'wasm' or 'auto'`);
    return openWasm(`the WebGPU backend cannot run this model: ${lacks}`);
  }
  const unfit = webgpu.limitProblem(gpuConfig, found);
  if (unfit) {
    if (choice === 'webgpu') throw new RecycleGPTError('OUT_OF_MEMORY', `the model does not fit this WebGPU adapter: ${unfit}; use backend 'wasm' or a smaller contextLength`);
    return openWasm(unfit);
  }
  if (choice === 'webgpu') return { backend: await webgpu.WebGPULlama.create(gpuConfig, found), name: 'webgpu', reason: 'asked for' };
  try {
    return { backend: await webgpu.WebGPULlama.create(gpuConfig, found), name: 'webgpu', reason: 'WebGPU adapter found' };
  } catch (error) {
    return openWasm(`WebGPU failed to start: ${(error as Error).message}`);
  }
}

/** The WebGPU adapter, or why there is none. */
async function findAdapter(): Promise<AdapterLike | string> {
  const gpu = (globalThis.navigator as { gpu?: { requestAdapter(options?: object): Promise<AdapterLike | null> } } | undefined)?.gpu;
  if (!gpu) return 'no navigator.gpu';
  try {
    return (await gpu.requestAdapter({ powerPreference: 'high-performance' })) ?? 'navigator.gpu has no adapter';
  } catch (cause) {
    return `navigator.gpu.requestAdapter() failed (${(cause as Error).message})`;
  }
}
