/// <reference types="@webgpu/types" />
import { expectedShape, isGlobalKind, TensorKind, validateConfig, type ModelConfig } from './config.js';
import { InvalidArgumentError, RecycleGPTError } from './errors.js';
import { GGMLType, isWeightType, typeName } from './ggml.js';
import { encodeDispatches, KernelCache, stepWords, type Dispatch, type Step } from './gpu.js';
import { buildForward, MAX_TOP_K_BUFFER, type ForwardPlan } from './forward.js';
import { PendingTensor, planTensor, type GpuTensor } from './tensors.js';

/** The most candidates `{ topK }` returns per row. */
export const MAX_TOP_K = MAX_TOP_K_BUFFER;

export type ForwardOutput = 'logits' | 'argmax' | { topK: number };
export interface TopK {
  /** [rows × k] token ids, best first. */
  ids: Uint32Array;
  /** Their logits. */
  logits: Float32Array;
}

export interface WebGPUModelOptions {
  /** A device to share; by default one is requested from navigator.gpu with the adapter's largest buffer limits. */
  device?: GPUDevice;
  /** Cap on one weight buffer (test hook to force split tensors); default: the device's binding and buffer limits. */
  maxBindingBytes?: number;
}

function engineError(message: string): RecycleGPTError {
  return new RecycleGPTError('ENGINE', message);
}

async function requestDevice(): Promise<GPUDevice> {
  const gpu = (globalThis.navigator as Navigator | undefined)?.gpu;
  if (!gpu) throw engineError('WebGPU is not available in this runtime; use the wasm backend.');
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) throw engineError('No WebGPU adapter was found; use the wasm backend.');
  const { maxStorageBufferBindingSize, maxBufferSize } = adapter.limits;
  return adapter.requestDevice({ requiredLimits: { maxStorageBufferBindingSize, maxBufferSize } });
}

const tensorKey = (kind: number, layer: number): string => (isGlobalKind(kind) ? `${kind}` : `${kind}:${layer}`);

/**
 * A llama model whose weights live in GPU buffers as their GGUF bytes; each forward is one command buffer.
 * Mirrors the WASM model: reserve every tensor, ready(), then forward(tokens, pos, logitsFrom).
 */
export class WebGPUModel {
  private readonly kernels: KernelCache;
  private readonly maxBindingBytes: number;
  private readonly tensors = new Map<string, GpuTensor>();
  /** Tensors reserved but not yet uploaded, by tensorKey. */
  private readonly pending = new Map<string, PendingTensor>();
  private plan: ForwardPlan | undefined;
  private lostReason: string | undefined;
  private disposed = false;
  /** Forwards share scratch and readback buffers, so they run one after another. */
  private queue: Promise<unknown> = Promise.resolve();
  private lastN = 0;

  private constructor(readonly device: GPUDevice, readonly config: ModelConfig, options: WebGPUModelOptions) {
    this.kernels = new KernelCache(device);
    const limits = device.limits;
    this.maxBindingBytes = Math.min(options.maxBindingBytes ?? Infinity, limits.maxStorageBufferBindingSize, limits.maxBufferSize);
    void device.lost.then((info) => {
      this.lostReason = info.message || info.reason;
    });
  }

  static async create(config: ModelConfig, options: WebGPUModelOptions = {}): Promise<WebGPUModel> {
    validateConfig(config);
    return new WebGPUModel(options.device ?? (await requestDevice()), config, options);
  }

  /**
   * Room for one tensor's GGUF bytes. Write them before the next reserve() or ready(): that is when they are uploaded
   * (a tensor that fits one GPU buffer is written straight into mapped GPU memory).
   */
  reserve(kind: number, layer: number, type: number, rows: number, cols: number): Uint8Array {
    this.assertUsable();
    if (this.plan) throw new InvalidArgumentError('reserve() was called after ready(); load every tensor first.');
    const shape = expectedShape(this.config, kind);
    if (!shape) throw new RecycleGPTError('MODEL_INVALID', `Unknown tensor kind ${kind}; see the kinds in docs/ARCHITECTURE.md.`);
    if (!isGlobalKind(kind) && !(Number.isInteger(layer) && layer >= 0 && layer < this.config.layers)) {
      throw new RecycleGPTError('MODEL_INVALID', `Layer ${layer} is out of range: the model has ${this.config.layers} layers.`);
    }
    if (rows !== shape[0] || cols !== shape[1]) {
      throw new RecycleGPTError('MODEL_INVALID', `Tensor kind ${kind} (layer ${layer}) is ${rows} × ${cols}, expected ${shape[0]} × ${shape[1]}; the GGUF metadata and tensors disagree.`);
    }
    const isNorm = kind === TensorKind.outputNorm || kind === TensorKind.attnNorm || kind === TensorKind.ffnNorm;
    if (isNorm && type !== GGMLType.F32) throw new RecycleGPTError('GGUF_UNSUPPORTED', `Norm weights must be F32, got ggml type ${type}.`);
    const key = tensorKey(kind, layer);
    if (this.tensors.has(key) || this.pending.has(key)) {
      throw new RecycleGPTError('MODEL_INVALID', `Tensor kind ${kind} (layer ${layer}) was given twice.`);
    }
    if (!isWeightType(type)) throw new RecycleGPTError('GGUF_UNSUPPORTED', `ggml type ${type} is not supported by the WebGPU backend; use F32, F16, Q4_0 or Q8_0 weights.`);
    this.flushPending();
    const pending = new PendingTensor(this.device, planTensor(type, rows, cols, this.maxBindingBytes), `${key} ${typeName(type)}`);
    this.pending.set(key, pending);
    return pending.view;
  }

  /** Uploads the last tensor, checks that all are present and prepares the forward (scratch, KV cache, pipelines). */
  async ready(): Promise<void> {
    this.assertUsable();
    if (this.plan) return;
    this.flushPending();
    const missing: string[] = [];
    const get = (kind: number, layer = 0): GpuTensor => {
      const tensor = this.tensors.get(tensorKey(kind, layer));
      if (!tensor) missing.push(tensorKey(kind, layer));
      return tensor!;
    };
    this.device.pushErrorScope('out-of-memory');
    this.device.pushErrorScope('validation');
    const weights = {
      tokenEmbd: get(TensorKind.tokenEmbd),
      outputNorm: get(TensorKind.outputNorm),
      output: this.tensors.get(tensorKey(TensorKind.output, 0)) ?? this.tensors.get(tensorKey(TensorKind.tokenEmbd, 0))!,
      layers: Array.from({ length: this.config.layers }, (_, l) => ({
        attnNorm: get(TensorKind.attnNorm, l), q: get(TensorKind.attnQ, l), k: get(TensorKind.attnK, l), v: get(TensorKind.attnV, l),
        attnOutput: get(TensorKind.attnOutput, l), ffnNorm: get(TensorKind.ffnNorm, l),
        gate: get(TensorKind.ffnGate, l), up: get(TensorKind.ffnUp, l), down: get(TensorKind.ffnDown, l),
      })),
    };
    if (missing.length > 0) {
      await this.device.popErrorScope();
      await this.device.popErrorScope();
      throw new RecycleGPTError('MODEL_INVALID', `Tensors missing (kind or kind:layer): ${missing.join(', ')}; the GGUF file is incomplete.`);
    }
    const plan = buildForward(this.kernels, this.config, weights);
    const validation = await this.device.popErrorScope();
    const oom = await this.device.popErrorScope();
    if (oom) throw new RecycleGPTError('OUT_OF_MEMORY', `The GPU ran out of memory preparing the model (${oom.message}); use a smaller context or the wasm backend.`);
    if (validation) throw engineError(`WebGPU rejected the forward pass: ${validation.message}`);
    this.plan = plan;
  }

  /**
   * Runs tokens at positions pos..pos+n-1 (their KV entries are (over)written) and reads back, for rows logitsFrom..n:
   * the argmax token ids (default), the logits [rows × n_vocab], or the top k ids with their logits.
   */
  forward(tokens: ArrayLike<number>, pos: number, logitsFrom: number, output?: 'argmax'): Promise<Uint32Array>;
  forward(tokens: ArrayLike<number>, pos: number, logitsFrom: number, output: 'logits'): Promise<Float32Array>;
  forward(tokens: ArrayLike<number>, pos: number, logitsFrom: number, output: { topK: number }): Promise<TopK>;
  forward(tokens: ArrayLike<number>, pos: number, logitsFrom: number, output: ForwardOutput = 'argmax'): Promise<Uint32Array | Float32Array | TopK> {
    const plan = this.assertReady();
    const step = this.checkForward(tokens, pos, logitsFrom, output);
    const ids = Uint32Array.from(tokens);
    return this.serialize(() => this.run(plan, ids, step, output));
  }

  /** Hidden states of the last forward: [n × dim], after the final RMSNorm. */
  hidden(): Promise<Float32Array> {
    const plan = this.assertReady();
    return this.serialize(async () => {
      const bytes = this.lastN * this.config.dim * 4;
      if (bytes === 0) return new Float32Array(0);
      const encoder = this.device.createCommandEncoder();
      encoder.copyBufferToBuffer(plan.scratch.hidden, 0, plan.scratch.readback, 0, bytes);
      this.device.queue.submit([encoder.finish()]);
      return new Float32Array(await this.mapReadback(plan.scratch.readback, bytes));
    });
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const p of this.pending.values()) for (const c of p.tensor.chunks) c.buffer.destroy();
    for (const t of this.tensors.values()) for (const c of t.chunks) c.buffer.destroy();
    if (this.plan) for (const buffer of this.plan.buffers) buffer.destroy();
    this.pending.clear();
    this.tensors.clear();
    this.plan = undefined;
  }

  private flushPending(): void {
    for (const [key, p] of this.pending) this.tensors.set(key, p.finish());
    this.pending.clear();
  }

  private assertUsable(): void {
    if (this.disposed) throw new RecycleGPTError('DISPOSED', 'This WebGPU model was disposed; load it again.');
    if (this.lostReason !== undefined) throw engineError(`The GPU device was lost (${this.lostReason}); load the model again.`);
  }

  private assertReady(): ForwardPlan {
    this.assertUsable();
    if (!this.plan) throw new InvalidArgumentError('Call ready() after reserving every tensor, before forward().');
    return this.plan;
  }

  private checkForward(tokens: ArrayLike<number>, pos: number, logitsFrom: number, output: ForwardOutput): Step {
    const { maxBatch, contextLength, vocabSize } = this.config;
    const n = tokens?.length;
    if (!Number.isInteger(n) || n < 1 || n > maxBatch) throw new InvalidArgumentError(`forward() takes 1..${maxBatch} tokens, got ${String(n)}.`);
    for (let i = 0; i < n; i++) {
      const t = tokens[i]!;
      if (!Number.isInteger(t) || t < 0 || t >= vocabSize) throw new InvalidArgumentError(`Token ${String(t)} at index ${i} is not in the vocabulary (0..${vocabSize - 1}).`);
    }
    if (!Number.isInteger(pos) || pos < 0 || pos + n > contextLength) {
      throw new RecycleGPTError('CONTEXT_FULL', `Positions ${pos}..${pos + n - 1} do not fit the KV cache of ${contextLength} tokens; start a new sequence or load with a larger context.`);
    }
    if (!Number.isInteger(logitsFrom) || logitsFrom < 0 || logitsFrom >= n) throw new InvalidArgumentError(`logitsFrom must be in 0..${n - 1}, got ${String(logitsFrom)}.`);
    if (typeof output === 'object') {
      const k = output?.topK;
      if (!Number.isInteger(k) || k < 1 || k > Math.min(MAX_TOP_K, vocabSize)) throw new InvalidArgumentError(`topK must be in 1..${Math.min(MAX_TOP_K, vocabSize)}, got ${String(k)}.`);
    } else if (output !== 'argmax' && output !== 'logits') {
      throw new InvalidArgumentError(`output must be 'argmax', 'logits' or { topK }, got ${String(output)}.`);
    }
    return { n, pos, logitsFrom };
  }

  private serialize<T>(job: () => Promise<T>): Promise<T> {
    const result = this.queue.then(job);
    this.queue = result.catch(() => undefined);
    return result;
  }

  private async run(plan: ForwardPlan, tokens: Uint32Array<ArrayBuffer>, step: Step, output: ForwardOutput): Promise<Uint32Array | Float32Array | TopK> {
    this.assertUsable();
    const { device } = this;
    const { scratch } = plan;
    device.queue.writeBuffer(scratch.step, 0, stepWords(step));
    device.queue.writeBuffer(scratch.tokens, 0, tokens);
    const k = output === 'logits' ? 0 : output === 'argmax' ? 1 : output.topK;
    // A rejected command buffer would leave the last forward's results in the readback buffer: surface it instead.
    device.pushErrorScope('validation');
    const dispatches: Dispatch[] = k > 0 ? [...plan.dispatches, plan.select(k)] : plan.dispatches;
    const encoder = device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    encodeDispatches(pass, dispatches, step);
    pass.end();
    const rows = step.n - step.logitsFrom;
    const readBytes = (k > 0 ? rows * k : rows * this.config.vocabSize) * 4;
    if (k > 0) {
      encoder.copyBufferToBuffer(scratch.topIds, 0, scratch.readback, 0, readBytes);
      encoder.copyBufferToBuffer(scratch.topValues, 0, scratch.readback, readBytes, readBytes);
    } else {
      encoder.copyBufferToBuffer(scratch.logits, 0, scratch.readback, 0, readBytes);
    }
    device.queue.submit([encoder.finish()]);
    this.lastN = step.n;
    const error = await device.popErrorScope();
    if (error) throw engineError(`WebGPU rejected the forward pass: ${error.message}`);
    const bytes = await this.mapReadback(scratch.readback, k > 0 ? 2 * readBytes : readBytes);
    if (k === 0) return new Float32Array(bytes);
    const ids = new Uint32Array(bytes, 0, rows * k);
    return k === 1 && output === 'argmax' ? ids : { ids, logits: new Float32Array(bytes, readBytes, rows * k) };
  }

  /** A copy of the first `bytes` of the readback buffer once the GPU is done. */
  private async mapReadback(buffer: GPUBuffer, bytes: number): Promise<ArrayBuffer> {
    try {
      await buffer.mapAsync(GPUMapMode.READ, 0, bytes);
    } catch (cause) {
      throw engineError(`Reading results from the GPU failed (${this.lostReason ?? String(cause)}); load the model again.`);
    }
    const copy = buffer.getMappedRange(0, bytes).slice(0);
    buffer.unmap();
    return copy;
  }
}

export type { ModelConfig };
