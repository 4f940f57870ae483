/**
 * The only file that knows the engine's C ABI (docs/ARCHITECTURE.md). Everything above it speaks
 * in typed arrays and throws RecycleGPTError; nothing below it allocates per token.
 */
import { architecture } from './contract/architectures.js';
import type { ModelConfig, RecycleConfig } from './contract/config.js';
import { ENGINE_TYPE_NAMES } from './contract/ggml-types.js';
import { KERNEL_SETS, type KernelChoice, type KernelSet } from './contract/modes.js';
import { InvalidArgumentError, RecycleGPTError } from './errors.js';
import { runtime } from './runtime.js';
import { argmax } from './sampler.js';

export interface EngineExports {
  memory: WebAssembly.Memory;
  rg_alloc(bytes: number): number;
  rg_free(ptr: number, bytes: number): void;
  rg_model_new(cfgPtr: number, cfgWords: number): number;
  rg_tensor_reserve(model: number, kind: number, layer: number, type: number, rows: number, cols: number): number;
  rg_model_ready(model: number): number;
  rg_forward(model: number, tokensPtr: number, n: number, pos: number, logitsFrom: number): number;
  rg_logits(model: number): number;
  rg_hidden(model: number): number;
  rg_model_free(model: number): void;
  rg_last_error(): number;
  rg_recycle_new(model: number, cfgPtr: number, cfgWords: number): number;
  rg_recycle_reserve(model: number, kind: number, layer: number, type: number, rows: number, cols: number): number;
  rg_recycle_ready(model: number): number;
  rg_recycle_forward(model: number, hiddenPtr: number, tokensPtr: number, n: number, pos: number, logitsFrom: number): number;
  rg_recycle_shortlist(model: number, idsPtr: number, k: number): number;
  rg_recycle_logits(model: number): number;
  rg_recycle_hidden(model: number): number;
  rg_select_sequence(model: number, sequence: number): number;
  rg_copy_sequence(model: number, from: number, to: number, positions: number): number;
  rg_runtime_bytes(cfgPtr: number, cfgWords: number, outPtr: number): number;
  rg_type_info(type: number, outPtr: number): number;
  rg_kind_info(kind: number, cfgPtr: number, cfgWords: number, outPtr: number): number;
  /** KERNEL_SETS' number of what this module runs. */
  rg_kernel_set(): number;
  /** 1 when the host runs the relaxed-SIMD kernels exactly (the relaxed module checks itself against scalar; 0 in the others). */
  rg_relaxed_ok(): number;
}

/** Status codes of wasm/src/error.rs, in words a user can act on. */
const ENGINE_ERRORS: Record<number, string> = {
  [-1]: 'invalid model configuration (heads must divide evenly into kv heads, rope dimensions must be even and at most the head size)',
  [-2]: 'out of memory: the model does not fit in WebAssembly memory (4 GiB at most, 128 MB in Cloudflare Workers)',
  [-3]: 'the model was freed',
  [-4]: 'unknown tensor kind or layer (or a tensor the model\'s architecture does not have)',
  [-5]: 'tensor shape does not match the model hyperparameters (quantized rows must be whole blocks: multiples of 32, of 256 for K-quants)',
  [-6]: `tensor type is not supported by the engine (it runs ${ENGINE_TYPE_NAMES.join(', ')}; RoPE factors must be F32)`,
  [-7]: 'tensor given twice',
  [-8]: 'a required tensor is missing',
  [-9]: 'engine call out of order',
  [-10]: 'invalid forward arguments (batch size or position out of range)',
  [-11]: 'token id out of range',
  [-12]: 'sizes too large for 32-bit WebAssembly memory',
};

const OUT_OF_MEMORY = -2;

function engineErrorMessage(code: number): string {
  return ENGINE_ERRORS[code] ?? `engine error ${code}`;
}

export type EngineSource = WebAssembly.Module | BufferSource | URL | string;

/**
 * The engine's two modules, by their kernels (`LoadOptions.wasm`): Workers import both at bundle time and pass them,
 * and the SDK runs the relaxed-SIMD one where the host runs it exactly.
 */
export interface EngineModules {
  /** recyclegpt-relaxed.wasm: SIMD128 plus relaxed-SIMD quantized kernels, the same results faster. */
  relaxed?: EngineSource;
  /** recyclegpt.wasm: SIMD128 kernels, on every host. */
  simd128?: EngineSource;
}

type ShippedKernels = keyof EngineModules;

/** The modules' files in the package (sdk/wasm/; `recyclegpt/<file>` imports one). */
export const ENGINE_FILES: Record<ShippedKernels, string> = { relaxed: 'recyclegpt-relaxed.wasm', simd128: 'recyclegpt.wasm' };

/**
 * Where those files are next to the SDK: each a literal `new URL`, which bundlers find and copy. Called only when
 * needed: a bundled Worker has no import.meta.url.
 */
const SHIPPED: Record<ShippedKernels, () => URL> = {
  relaxed: () => new URL('../wasm/recyclegpt-relaxed.wasm', import.meta.url),
  simd128: () => new URL('../wasm/recyclegpt.wasm', import.meta.url),
};

/** What a Worker does instead: it cannot compile WebAssembly at run time, nor read the files next to the SDK. */
const WORKERS_HINT =
  `In Cloudflare Workers import both modules at bundle time (import relaxed from 'recyclegpt/${ENGINE_FILES.relaxed}'; ` +
  `import simd128 from 'recyclegpt/${ENGINE_FILES.simd128}') and pass wasm: { relaxed, simd128 }`;

/** `auto` tries them in this order. */
const PREFERENCE: readonly ShippedKernels[] = ['relaxed', 'simd128'];

/** An engine instance and what it runs. */
export interface OpenedEngine {
  exports: EngineExports;
  kernels: KernelSet;
  /** Why these kernels: asked for, the only module given, or what ruled relaxed SIMD out. */
  reason: string;
}

/**
 * The one place that picks the engine module: with `choice` 'auto', the relaxed-SIMD module where the host compiles
 * it and computes its instruction exactly (rg_relaxed_ok after instantiation), else the SIMD128 one; 'relaxed' or
 * 'simd128' takes that one or throws why not. `wasm`: both modules, one (run as it is), or none (the shipped files).
 */
export async function openEngine(wasm: EngineSource | EngineModules | undefined, choice: KernelChoice = 'auto'): Promise<OpenedEngine> {
  if (wasm !== undefined && !isEngineModules(wasm)) return openOne(wasm, choice);
  const modules: Record<ShippedKernels, EngineSource | (() => URL) | undefined> = wasm ? { relaxed: wasm.relaxed, simd128: wasm.simd128 } : SHIPPED;
  if (!PREFERENCE.some((k) => modules[k] !== undefined)) {
    throw new InvalidArgumentError('the wasm option names no module: pass { relaxed, simd128 } (either or both), one module, or nothing');
  }
  let ruledOut = '';
  for (const kernels of choice === 'auto' ? PREFERENCE : [choice]) {
    const source = modules[kernels];
    if (source === undefined) {
      ruledOut = `no wasm.${kernels} module was given`;
      continue;
    }
    let engine: EngineExports;
    try {
      engine = await instantiateEngine(await compileEngine(source));
    } catch (error) {
      // Relaxed SIMD is optional: a host that cannot compile it (or load the file) gets the SIMD128 module.
      if (kernels === 'simd128') throw error;
      const cause = (error as Error).cause instanceof Error ? ((error as Error).cause as Error) : (error as Error);
      ruledOut = `${ENGINE_FILES[kernels]} cannot be used here (${cause.message})`;
      continue;
    }
    const found = kernelSet(engine);
    if (found !== kernels) {
      throw new InvalidArgumentError(`the module given as wasm.${kernels} runs ${found} kernels; pass ${ENGINE_FILES[kernels]} there`);
    }
    if (kernels === 'relaxed' && engine.rg_relaxed_ok() !== 1) {
      ruledOut = 'this host runs the relaxed-SIMD kernels inexactly (rg_relaxed_ok)';
      continue;
    }
    return { exports: engine, kernels, reason: choice === 'auto' ? (kernels === 'relaxed' ? 'relaxed SIMD runs exactly here' : ruledOut) : 'asked for' };
  }
  const what = choice === 'auto' ? 'no engine module given can run here' : `kernels '${choice}' cannot run here`;
  const remedy = modules.simd128 === undefined
    ? `pass ${ENGINE_FILES.simd128} too, as wasm: { relaxed, simd128 }`
    : `use kernels 'auto', which runs ${ENGINE_FILES.simd128} where relaxed SIMD does not`;
  throw new RecycleGPTError('ENGINE', `${what}: ${ruledOut}; ${remedy}`);
}

/** A single module given as `wasm`: it runs what it was built with, unless that contradicts `choice`. */
async function openOne(source: EngineSource, choice: KernelChoice): Promise<OpenedEngine> {
  const engine = await instantiateEngine(await compileEngine(source));
  const kernels = kernelSet(engine);
  const asked = choice === 'auto' ? undefined : choice;
  if (asked && asked !== kernels) {
    throw new RecycleGPTError('ENGINE', `kernels '${asked}' was asked for, but the module given as wasm runs ${kernels} kernels; pass ${ENGINE_FILES[asked]} (or both modules, as wasm: { relaxed, simd128 })`);
  }
  if (kernels === 'relaxed' && engine.rg_relaxed_ok() !== 1) {
    throw new RecycleGPTError('ENGINE', `this host runs the relaxed-SIMD kernels inexactly (rg_relaxed_ok), so the module given as wasm (${ENGINE_FILES.relaxed}) would give wrong results; pass ${ENGINE_FILES.simd128}, or both modules as wasm: { relaxed, simd128 }`);
  }
  return { exports: engine, kernels, reason: asked ? 'asked for' : 'the only module given' };
}

function isEngineModules(wasm: EngineSource | EngineModules): wasm is EngineModules {
  return (
    typeof wasm === 'object' && !(wasm instanceof WebAssembly.Module) && !(wasm instanceof URL) &&
    !(wasm instanceof ArrayBuffer) && !ArrayBuffer.isView(wasm) && !(typeof SharedArrayBuffer !== 'undefined' && wasm instanceof SharedArrayBuffer)
  );
}

function kernelSet(engine: EngineExports): KernelSet {
  if (typeof engine.rg_kernel_set !== 'function') {
    throw new RecycleGPTError('ENGINE', `the engine module is from another version of the SDK (it has no rg_kernel_set); use this package's ${ENGINE_FILES.simd128} and ${ENGINE_FILES.relaxed}`);
  }
  return KERNEL_SETS[engine.rg_kernel_set()] ?? 'scalar';
}

/** Compiled modules by URL and by bytes: each is compiled at most once per process. */
const compiledUrls = new Map<string, Promise<WebAssembly.Module>>();
const compiledBytes = new WeakMap<object, Promise<WebAssembly.Module>>();

/** Compiles the engine once per source; the SIMD128 copy shipped next to the SDK is the default. */
export function compileEngine(source: EngineSource | (() => URL) = SHIPPED.simd128): Promise<WebAssembly.Module> {
  if (source instanceof WebAssembly.Module) return Promise.resolve(source);
  if (typeof source === 'function' || typeof source === 'string' || source instanceof URL) return compileUrl(source);
  let module = compiledBytes.get(source);
  if (!module) compiledBytes.set(source, (module = compileBytes(source)));
  return module;
}

function compileUrl(where: string | URL | (() => URL)): Promise<WebAssembly.Module> {
  let url: URL;
  try {
    url = typeof where === 'function' ? where() : new URL(where, import.meta.url);
  } catch (cause) {
    return Promise.reject(new RecycleGPTError('ENGINE', `cannot locate the WebAssembly engine (${(cause as Error).message}). ${WORKERS_HINT}`, { cause }));
  }
  const cached = compiledUrls.get(url.href);
  if (cached) return cached;
  const read = readEngine(url);
  // A read that failed (a missing file, the network) is tried again next time; a compiled module, or a compile error, stays.
  read.catch(() => compiledUrls.delete(url.href));
  const module = read.then(compileBytes);
  compiledUrls.set(url.href, module);
  return module;
}

async function readEngine(url: URL): Promise<BufferSource> {
  try {
    if (url.protocol === 'file:') {
      // The Node entry reads files; elsewhere a file: URL (the default next to the SDK) cannot be read.
      if (!runtime.files) throw new Error('reading files needs Node.js (the package\'s Node entry)');
      return await runtime.files.read(url);
    }
    const response = await fetch(url);
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    return await response.arrayBuffer();
  } catch (cause) {
    throw new RecycleGPTError(
      'ENGINE',
      `cannot read the WebAssembly engine at ${url.href} (${(cause as Error).message}); run \`npm run build\` or pass the modules as the \`wasm\` option`,
      { cause },
    );
  }
}

async function compileBytes(bytes: BufferSource): Promise<WebAssembly.Module> {
  try {
    return await WebAssembly.compile(bytes);
  } catch (cause) {
    // Cloudflare Workers refuse to compile WebAssembly at run time: the modules must come from bundle-time imports.
    throw new RecycleGPTError(
      'ENGINE',
      `cannot compile the WebAssembly engine (${(cause as Error).message}). ${WORKERS_HINT}`,
      { cause },
    );
  }
}

/** WebAssembly memory: 65536 pages of 64 KiB. */
export const WASM_MEMORY_BYTES = 2 ** 32;
/** One allocation in wasm32 (a Rust Vec) holds less than 2 GiB. */
const WASM_ALLOCATION_BYTES = 2 ** 31 - 1;

/** What a model's file will put in engine memory: its weights, and its largest tensor. */
export interface WeightsNeed {
  bytes: number;
  largest: { name: string; bytes: number };
  /** Memory the caller allows the model (LoadOptions.memoryLimit); wasm32's 4 GiB bounds it anyway. */
  limit?: number;
}

/** An engine instance; each model gets its own, so disposing a model releases its whole memory. */
export async function instantiateEngine(module: WebAssembly.Module): Promise<EngineExports> {
  const instance = await WebAssembly.instantiate(module, {});
  return instance.exports as unknown as EngineExports;
}

/** One llama model inside an engine instance. */
export class WasmLlama {
  private readonly handle: number;
  private tokensPtr = 0;
  private freed = false;
  /** Rows one recycle pass takes at most; 0 without a head. */
  recycleMaxBatch = 0;
  /** Bytes of KV cache one sequence takes: the base's, plus the head's once attached. */
  kvBytesPerSequence: number;
  /** The token ids the head's logits are limited to (recycleShortlist). */
  private shortlist?: Uint32Array;

  /**
   * A model for `config` whose weights `weights` says about; refused before anything is allocated, with the sizes,
   * when weights, KV caches and scratch cannot fit the 4 GiB of wasm32 memory.
   */
  constructor(
    private readonly engine: EngineExports,
    readonly config: ModelConfig,
    weights?: WeightsNeed,
  ) {
    const words = modelWords(config);
    const bytes = runtimeBytes(engine, words);
    if (weights) checkMemory(bytes, weights, config);
    this.kvBytesPerSequence = bytes.kv / config.sequences;
    this.handle = withWords(engine, words, (ptr, n) => engine.rg_model_new(ptr, n)) >>> 0;
    if (this.handle === 0) throw engineError('MODEL_INVALID', engine.rg_last_error(), 'in the model hyperparameters');
  }

  /** Independent KV caches this model keeps (base and head alike). */
  get sequences(): number {
    return this.config.sequences;
  }

  /**
   * Makes KV cache `sequence` (0 ≤ sequence < sequences) the one later forwards of the model and its head read and
   * write; nothing is copied, and each cache keeps what it holds.
   */
  selectSequence(sequence: number): void {
    this.checkAlive();
    if (!Number.isInteger(sequence) || sequence < 0 || sequence >= this.config.sequences) {
      throw new RecycleGPTError('INVALID_ARGUMENT', `sequence must be an integer from 0 to ${this.config.sequences - 1}, got ${String(sequence)}`);
    }
    this.check(this.engine.rg_select_sequence(this.handle, sequence), `selecting KV sequence ${sequence}`);
  }

  /** Copies positions 0…positions-1 of KV cache `from` into cache `to` (base and head alike); the selection stays. */
  copySequence(from: number, to: number, positions: number): void {
    this.checkAlive();
    const status = this.engine.rg_copy_sequence(this.handle, from, to, positions);
    if (status !== 0) throw engineError('ENGINE', status, `copying ${positions} positions from KV sequence ${from} to ${to}`);
  }

  /** Room for one tensor's raw bytes; write them before the next reserve (memory may grow and move). */
  reserve(kind: number, layer: number, type: number, rows: number, cols: number, byteSize: number, name: string): Uint8Array {
    return this.view(this.engine.rg_tensor_reserve(this.handle, kind, layer, type, rows, cols), byteSize, name, cols, rows, type);
  }

  ready(): void {
    this.check(this.engine.rg_model_ready(this.handle), 'while preparing the model');
    this.tokensPtr = this.engine.rg_alloc(this.config.maxBatch * 4) >>> 0;
    if (this.tokensPtr === 0) throw engineError('OUT_OF_MEMORY', OUT_OF_MEMORY, 'while preparing the model');
  }

  /** Attaches a recycle head (before or after ready); its tensors follow through recycleReserve. */
  attachRecycle(config: RecycleConfig): void {
    const words = decoderWords(config, this.config.sequences);
    this.check(withWords(this.engine, words, (ptr, n) => this.engine.rg_recycle_new(this.handle, ptr, n)), 'in the recycle head hyperparameters');
    this.recycleMaxBatch = config.maxBatch;
    // The head's stack sized as a model of its shape: the engine's own count of its KV cache.
    this.kvBytesPerSequence += runtimeBytes(this.engine, modelWords({ ...this.config, ...config })).kv / this.config.sequences;
  }

  recycleReserve(kind: number, layer: number, type: number, rows: number, cols: number, byteSize: number, name: string): Uint8Array {
    return this.view(this.engine.rg_recycle_reserve(this.handle, kind, layer, type, rows, cols), byteSize, name, cols, rows, type);
  }

  recycleReady(): void {
    this.check(this.engine.rg_recycle_ready(this.handle), 'while preparing the recycle head');
  }

  /**
   * Runs the head on `tokens` at positions pos…, each with the hidden state of consecutive rows from
   * `fromRow` of the last base forward ('base') or of the last head forward ('head', for chained drafts).
   */
  recycleForward(source: 'base' | 'head', fromRow: number, tokens: ArrayLike<number>, pos: number, logitsFrom: number): void {
    this.checkAlive();
    const rows = source === 'base' ? this.engine.rg_hidden(this.handle) : this.engine.rg_recycle_hidden(this.handle);
    new Uint32Array(this.engine.memory.buffer, this.tokensPtr, tokens.length).set(tokens);
    const hiddenPtr = (rows >>> 0) + fromRow * this.config.dim * 4;
    const status = this.engine.rg_recycle_forward(this.handle, hiddenPtr, this.tokensPtr, tokens.length, pos, logitsFrom);
    if (status !== 0) throw engineError('ENGINE', status, `in a recycle pass of ${tokens.length} tokens at position ${pos}`);
  }

  /**
   * Limits the head's logits to these token ids (rows of the output matrix, gathered once), or lifts the limit
   * (undefined or empty). Tokens outside it are never guessed; the head's output matrix costs ids.length / vocabSize.
   */
  recycleShortlist(ids: readonly number[] | undefined): void {
    this.checkAlive();
    const k = ids?.length ?? 0;
    const ptr = k > 0 ? this.engine.rg_alloc(k * 4) >>> 0 : 0;
    if (k > 0 && ptr === 0) throw engineError('OUT_OF_MEMORY', OUT_OF_MEMORY, 'while setting the recycle shortlist');
    try {
      if (k > 0) new Uint32Array(this.engine.memory.buffer, ptr, k).set(ids!);
      this.check(this.engine.rg_recycle_shortlist(this.handle, ptr, k), `setting a recycle shortlist of ${k} tokens`);
    } finally {
      if (k > 0) this.engine.rg_free(ptr, k * 4);
    }
    this.shortlist = k > 0 ? Uint32Array.from(ids!) : undefined;
  }

  /** Row `row` of the last head forward over the whole vocabulary (-Infinity outside a shortlist). */
  recycleLogits(row = 0): Float32Array {
    const scores = this.headScores(row);
    if (!this.shortlist) return scores;
    const full = new Float32Array(this.config.vocabSize).fill(-Infinity);
    this.shortlist.forEach((id, i) => (full[id] = scores[i]!));
    return full;
  }

  recycleArgmax(row = 0): number {
    const best = argmax(this.headScores(row));
    return this.shortlist ? this.shortlist[best]! : best;
  }

  /** The head's logits as the engine leaves them: a vocabulary row, or one per shortlisted token. */
  private headScores(row: number): Float32Array {
    this.checkAlive();
    const width = this.shortlist?.length ?? this.config.vocabSize;
    return new Float32Array(this.engine.memory.buffer, (this.engine.rg_recycle_logits(this.handle) >>> 0) + row * width * 4, width);
  }

  /** Runs `tokens` at positions pos… and keeps logits for rows logitsFrom…; see rg_forward. Logits are always kept. */
  forward(tokens: ArrayLike<number>, pos: number, logitsFrom: number): void {
    this.checkAlive();
    new Uint32Array(this.engine.memory.buffer, this.tokensPtr, tokens.length).set(tokens);
    const status = this.engine.rg_forward(this.handle, this.tokensPtr, tokens.length, pos, logitsFrom);
    if (status !== 0) throw engineError('ENGINE', status, `in a forward pass of ${tokens.length} tokens at position ${pos}`);
  }

  /** Logits of row `row` (counted from logitsFrom) of the last forward; a view valid until the next call. */
  logits(row = 0): Float32Array {
    this.checkAlive();
    const vocab = this.config.vocabSize;
    return new Float32Array(this.engine.memory.buffer, (this.engine.rg_logits(this.handle) >>> 0) + row * vocab * 4, vocab);
  }

  argmax(row = 0): number {
    return argmax(this.logits(row));
  }

  /** Final hidden state of row `row` of the last forward; a view valid until the next call. */
  hidden(row = 0): Float32Array {
    this.checkAlive();
    const dim = this.config.dim;
    return new Float32Array(this.engine.memory.buffer, (this.engine.rg_hidden(this.handle) >>> 0) + row * dim * 4, dim);
  }

  free(): void {
    if (this.freed) return;
    this.freed = true;
    this.engine.rg_model_free(this.handle);
  }

  private view(ptr: number, byteSize: number, name: string, cols: number, rows: number, type: number): Uint8Array {
    if (ptr === 0) {
      const code = this.engine.rg_last_error();
      throw engineError(code === OUT_OF_MEMORY ? 'OUT_OF_MEMORY' : 'MODEL_INVALID', code, `for tensor '${name}' (${cols}×${rows}, type ${type})`);
    }
    return new Uint8Array(this.engine.memory.buffer, ptr >>> 0, byteSize);
  }

  private check(status: number, where: string): void {
    if (status !== 0) throw engineError(status === OUT_OF_MEMORY ? 'OUT_OF_MEMORY' : 'MODEL_INVALID', status, where);
  }

  private checkAlive(): void {
    if (this.freed) throw new RecycleGPTError('DISPOSED', 'the model was disposed; load it again');
  }
}

function engineError(code: 'OUT_OF_MEMORY' | 'MODEL_INVALID' | 'ENGINE', status: number, where: string): RecycleGPTError {
  return new RecycleGPTError(code, `${engineErrorMessage(status)} ${where}`);
}

/** Config word 13: what sets an architecture's layers apart from llama's (wasm/src/config.rs ArchFlags). */
export function archFlags(name: ModelConfig['architecture']): number {
  const spec = architecture(name);
  return (
    (spec.rope === 'neox' ? 1 : 0) |
    (spec.tensors.attnQNorm === 'required' ? 2 : 0) |
    (spec.tensors.attnPostNorm === 'required' ? 4 : 0) |
    (spec.ffnActivation === 'gelu-tanh' ? 8 : 0) |
    (spec.scaleEmbedding ? 16 : 0) |
    (spec.scaleQueries ? 32 : 0) |
    (spec.tensors.ropeFreqs ? 64 : 0)
  );
}

const ROPE_SCALING_WORD = { none: 0, linear: 1, yarn: 2 } as const;

/** Config words of rg_model_new (docs/ARCHITECTURE.md "Config words"). */
export function modelWords(config: ModelConfig): number[] {
  const { ropeScaling: rope, slidingWindow: window } = config;
  return [
    config.vocabSize, config.dim, ...decoderWords(config, config.sequences),
    archFlags(config.architecture), config.sequences,
    ROPE_SCALING_WORD[rope.type], f32Bits(rope.factor), f32Bits(rope.attnFactor), rope.originalContext,
    window?.size ?? 0, window?.pattern ?? 0, f32Bits(window?.ropeFreqBase ?? 0),
    config.attentionScaleDim, f32Bits(config.finalLogitSoftcap),
  ];
}

/** Words 2..13 of rg_model_new, which rg_recycle_new takes alone: a llama stack's own shape. */
function decoderWords(config: RecycleConfig, sequences: number): number[] {
  return [
    config.layers, config.heads, config.kvHeads, config.ffnDim, config.contextLength, config.headDim, config.ropeDim,
    f32Bits(config.ropeFreqBase), f32Bits(config.rmsEps), kvWord({ ...config, sequences }), config.maxBatch,
  ];
}

const MiB = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

/** What a model with config `words` allocates besides its weights (rg_runtime_bytes), in bytes. */
function runtimeBytes(engine: EngineExports, words: number[]): { kv: number; scratch: number } {
  const out = engine.rg_alloc(16) >>> 0;
  if (out === 0) throw engineError('OUT_OF_MEMORY', OUT_OF_MEMORY, 'while sizing the model');
  try {
    const status = withWords(engine, words, (ptr, n) => engine.rg_runtime_bytes(ptr, n, out));
    if (status !== 0) throw engineError('MODEL_INVALID', status, 'in the model hyperparameters');
    const w = new Uint32Array(engine.memory.buffer, out, 4);
    return { kv: w[0]! + w[1]! * 2 ** 32, scratch: w[2]! + w[3]! * 2 ** 32 };
  } finally {
    engine.rg_free(out, 16);
  }
}

/** Refuses, with the sizes, a model whose weights, KV caches and scratch cannot fit wasm32 memory. */
function checkMemory({ kv, scratch }: { kv: number; scratch: number }, weights: WeightsNeed, config: ModelConfig): void {
  if (weights.largest.bytes > WASM_ALLOCATION_BYTES) {
    throw new RecycleGPTError(
      'OUT_OF_MEMORY',
      `tensor '${weights.largest.name}' takes ${MiB(weights.largest.bytes)}, more than one WebAssembly allocation can hold (2 GiB); use a smaller model or a smaller type (e.g. Q4_K_M)`,
    );
  }
  const total = weights.bytes + kv + scratch;
  const limit = Math.min(weights.limit ?? WASM_MEMORY_BYTES, WASM_MEMORY_BYTES);
  if (total > limit) {
    const what = limit < WASM_MEMORY_BYTES ? `the memoryLimit of ${MiB(limit)}` : "WebAssembly's 4096 MiB";
    throw new RecycleGPTError(
      'OUT_OF_MEMORY',
      `the model needs ${MiB(total)} (weights ${MiB(weights.bytes)} + KV cache ${MiB(kv)} for ${config.contextLength} tokens × ${config.sequences} sequence(s) + scratch ${MiB(scratch)}), ` +
        `more than ${what}; use a smaller model or type, or a smaller contextLength${config.sequences > 1 ? ' or fewer sequences' : ''}`,
    );
  }
  if (kv + scratch > WASM_ALLOCATION_BYTES) {
    throw new RecycleGPTError(
      'OUT_OF_MEMORY',
      `the KV cache (${MiB(kv)} for ${config.contextLength} tokens × ${config.sequences} sequence(s)) and scratch (${MiB(scratch)}) exceed the 2 GiB the engine gives them in wasm32; use a smaller contextLength${config.sequences > 1 ? ' or fewer sequences' : ''}`,
    );
  }
}

/** An f16 KV cache up to this size is kept widened in f32 (twice the bytes, the same numbers). */
const WIDE_KV_MAX_BYTES = 16 * 2 ** 20;

/**
 * Config word 11: 0 = f32 cache; 1 = f16; 2 = f16 values kept widened in f32, which spares attention widening
 * the whole cache on every pass (the demo model decodes 4–12% faster). Decided per cache: the base's and a head's.
 */
export function kvWord(config: Pick<ModelConfig, 'kvType' | 'layers' | 'contextLength' | 'kvHeads' | 'headDim' | 'sequences'>): number {
  if (config.kvType === 'f32') return 0;
  const wideBytes = config.sequences * 2 * config.layers * config.contextLength * config.kvHeads * config.headDim * 4;
  return wideBytes <= WIDE_KV_MAX_BYTES ? 2 : 1;
}

/** Passes u32 words to the engine through a temporary buffer. */
function withWords(engine: EngineExports, words: number[], call: (ptr: number, n: number) => number): number {
  const ptr = engine.rg_alloc(words.length * 4) >>> 0;
  if (ptr === 0) throw engineError('OUT_OF_MEMORY', OUT_OF_MEMORY, 'while configuring the model');
  new Uint32Array(engine.memory.buffer, ptr, words.length).set(words);
  try {
    return call(ptr, words.length);
  } finally {
    engine.rg_free(ptr, words.length * 4);
  }
}

function f32Bits(value: number): number {
  const view = new DataView(new ArrayBuffer(4));
  view.setFloat32(0, value, true);
  return view.getUint32(0, true);
}
