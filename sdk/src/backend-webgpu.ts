/// <reference types="@webgpu/types" />
/**
 * The WebGPU backend: kernels' WebGPUModel behind the SDK's Backend interface. Imported dynamically by
 * backend.ts, only once a WebGPU adapter was found, so runtimes without WebGPU never load the kernels.
 */
import { KernelError, MAX_BATCH, MAX_TOP_K, WebGPUModel, configProblem, largestBufferBytes, tensorProblem } from '@recyclegpt/kernels';
import type { AdapterLike, ForwardOutput, LoadingBackend, ModelNeeds, TopCandidates } from './backend.js';
import { TENSOR_KINDS } from './contract/architectures.js';
import type { ModelConfig, RecycleConfig } from './contract/config.js';
import { ggmlTypeName } from './contract/ggml-types.js';
import { InvalidArgumentError, RecycleGPTError } from './errors.js';
import { argmax } from './sampler.js';

const KIND_NAMES = new Map(Object.values(TENSOR_KINDS).map((k) => [k.id as number, k.gguf.replace('{L}', 'N')]));

/** What of this model the kernels do not run (architecture, options, tensors, types), in words, or undefined. */
export function unsupportedProblem(config: Omit<ModelConfig, 'maxBatch'>, needs: ModelNeeds): string | undefined {
  const problem = configProblem({ ...config, maxBatch: MAX_BATCH });
  if (problem) return problem;
  for (const { kind, type } of needs.tensors) {
    const problem = tensorProblem(kind, type);
    if (problem) return `${KIND_NAMES.get(kind) ?? `tensor kind ${kind}`} in ${ggmlTypeName(type)}: ${problem}`;
  }
  return undefined;
}

/** What keeps this model off the adapter (a buffer it cannot split above its limits), or undefined when it fits. */
export function limitProblem(config: Omit<ModelConfig, 'maxBatch'>, adapter: AdapterLike): string | undefined {
  const { maxStorageBufferBindingSize, maxBufferSize } = adapter.limits;
  const limit = Math.min(maxStorageBufferBindingSize, maxBufferSize);
  const needed = largestBufferBytes({ ...config, maxBatch: MAX_BATCH });
  return needed > limit ? `it needs a ${needed}-byte buffer (KV cache of one layer, attention scores or logits), the adapter allows ${limit}` : undefined;
}

/**
 * One forward's read-back rows: whole rows of logits (k = 0), or k ids a row, largest first, with their logits unless
 * only the argmax was read back (4 bytes a row instead of 4 × vocabulary).
 */
interface Rows {
  k: number;
  ids?: Uint32Array;
  logits?: Float32Array;
}

/** The rows a kernels forward or draftAndCheck returned for `output`. */
function rowsOf(output: ForwardOutput, result: Uint32Array | Float32Array | { ids: Uint32Array; logits?: Float32Array }): Rows {
  if (output === 'logits') return { k: 0, logits: result as Float32Array };
  if (output === 'argmax') return { k: 1, ids: 'ids' in result ? result.ids : (result as Uint32Array) };
  const { ids, logits } = result as { ids: Uint32Array; logits: Float32Array };
  return { k: output.topK, ids, logits };
}

export class WebGPULlama implements LoadingBackend {
  private last: Rows = { k: 1, ids: new Uint32Array(0) };
  private lastRecycle: Rows = { k: 1, ids: new Uint32Array(0) };

  private constructor(private readonly model: WebGPUModel) {}

  /** A model on its own device from `adapter`, with the adapter's largest buffer limits. */
  static async create(config: Omit<ModelConfig, 'maxBatch'>, adapter: AdapterLike): Promise<WebGPULlama> {
    const { maxStorageBufferBindingSize, maxBufferSize } = adapter.limits;
    let device: GPUDevice;
    try {
      device = await (adapter as GPUAdapter).requestDevice({ requiredLimits: { maxStorageBufferBindingSize, maxBufferSize } });
    } catch (cause) {
      throw new RecycleGPTError('ENGINE', `the WebGPU adapter gave no device (${(cause as Error).message}); use backend 'wasm'`, { cause });
    }
    try {
      return new WebGPULlama(await sdkErrors(() => WebGPUModel.create({ ...config, maxBatch: MAX_BATCH }, { device })));
    } catch (error) {
      device.destroy();
      throw error;
    }
  }

  get config(): ModelConfig {
    return this.model.config as ModelConfig;
  }

  /** The kernels keep one KV cache. */
  readonly sequences = 1;

  selectSequence(sequence: number): void {
    if (sequence !== 0) throw new InvalidArgumentError(`the WebGPU backend keeps one KV sequence (0), got ${String(sequence)}`);
  }

  /** GPU → CPU readbacks so far and their bytes. */
  get readbacks(): { count: number; bytes: number } {
    return { ...this.model.readbacks };
  }

  get recycleMaxBatch(): number {
    return this.model.recycleMaxBatch;
  }

  reserve(kind: number, layer: number, type: number, rows: number, cols: number, byteSize: number): Uint8Array {
    return sdkErrors(() => this.model.reserve(kind, layer, type, rows, cols, byteSize));
  }

  ready(): Promise<void> {
    return sdkErrors(() => this.model.ready());
  }

  attachRecycle(config: RecycleConfig): void {
    sdkErrors(() => this.model.attachRecycle(config));
  }

  recycleReserve(kind: number, layer: number, type: number, rows: number, cols: number, byteSize: number): Uint8Array {
    return sdkErrors(() => this.model.recycleReserve(kind, layer, type, rows, cols, byteSize));
  }

  recycleReady(): Promise<void> {
    return sdkErrors(() => this.model.recycleReady());
  }

  readonly maxTopK = MAX_TOP_K;

  async forward(tokens: ArrayLike<number>, pos: number, logitsFrom: number, output: ForwardOutput = 'logits'): Promise<void> {
    this.last = rowsOf(output, await sdkErrors(() => this.model.forward(tokens, pos, logitsFrom, output)));
  }

  candidates(row = 0): TopCandidates {
    const { k, ids, logits } = this.last;
    if (!ids || !logits) throw new RecycleGPTError('ENGINE', 'the last forward did not read back top-k candidates');
    checkRow(row, ids.length / k);
    return { ids: ids.subarray(row * k, (row + 1) * k), logits: logits.subarray(row * k, (row + 1) * k) };
  }

  logits(row = 0): Float32Array {
    return logitsRow(this.last, row, this.config.vocabSize);
  }

  argmax(row = 0): number {
    return argmaxOf(this.last, row, this.config.vocabSize);
  }

  async recycleForward(source: 'base' | 'head', fromRow: number, tokens: ArrayLike<number>, pos: number, logitsFrom: number, output: ForwardOutput = 'logits'): Promise<void> {
    if (typeof output === 'object') throw new InvalidArgumentError('a head pass reads back logits or the argmax');
    this.lastRecycle = rowsOf(output, await sdkErrors(() => this.model.recycleForward(source, fromRow, tokens, pos, logitsFrom, output)));
  }

  async draftAndCheck(fromRow: number, headTokens: number[], pos: number, drafts: number, logitsFrom: number, output: 'argmax' | { topK: number }): Promise<number[]> {
    const out = await sdkErrors(() => this.model.draftAndCheck(fromRow, headTokens, pos, drafts, logitsFrom, output));
    // As after the separate passes: the check is the last base forward, the last draft's pass the last head one.
    this.last = rowsOf(output, out);
    this.lastRecycle = { k: 1, ids: out.drafts.subarray(drafts - 1) };
    return [...out.drafts];
  }

  recycleLogits(row = 0): Float32Array {
    return logitsRow(this.lastRecycle, row, this.config.vocabSize);
  }

  recycleArgmax(row = 0): number {
    return argmaxOf(this.lastRecycle, row, this.config.vocabSize);
  }

  free(): void {
    this.model.dispose();
    this.model.device.destroy();
  }
}

/** Runs `call`, rethrowing a KernelError (sync or async) as the SDK's error with the same code (exported for its test). */
export function sdkErrors<T>(call: () => T): T {
  try {
    const result = call();
    return (result instanceof Promise ? result.catch((e: unknown) => Promise.reject(toSdkError(e))) : result) as T;
  } catch (e) {
    throw toSdkError(e);
  }
}

function toSdkError(e: unknown): unknown {
  if (!(e instanceof KernelError)) return e;
  return e.code === 'INVALID_ARGUMENT' ? new InvalidArgumentError(e.message) : new RecycleGPTError(e.code, e.message, { cause: e });
}

function logitsRow({ k, logits }: Rows, row: number, width: number): Float32Array {
  if (k !== 0 || !logits) throw new RecycleGPTError('ENGINE', 'the last forward read back only its argmax or top k; ask for logits');
  checkRow(row, logits.length / width);
  return logits.subarray(row * width, (row + 1) * width);
}

function argmaxOf(rows: Rows, row: number, width: number): number {
  if (rows.k === 0) return argmax(logitsRow(rows, row, width));
  checkRow(row, rows.ids!.length / rows.k);
  return rows.ids![row * rows.k]!;
}

function checkRow(row: number, rows: number): void {
  if (!Number.isInteger(row) || row < 0 || row >= rows) throw new InvalidArgumentError(`row ${String(row)} is not among the last forward's ${rows} kept rows`);
}
