/// <reference types="@webgpu/types" />
import { expectedRecycleShape, expectedShape, isGlobalKind, MAX_BATCH, RecycleKind, TensorKind, tensorProblem, validateConfig, type ModelConfig, type RecycleConfig } from './config.js';
import { invalidArgument, KernelError } from './errors.js';
import { typeName, type WeightType } from './ggml.js';
import { encodeDispatches, KernelCache, stepWords, type Dispatch, type Step } from './gpu.js';
import { buildForward, buildRecycleForward, MAX_TOP_K_BUFFER, type ForwardPlan, type LayerWeights, type RecycleScratch, type Scratch } from './forward.js';
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

function engineError(message: string): KernelError {
  return new KernelError('ENGINE', message);
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

/** Tensors of one decoder stack (the model or its recycle head): GPU buffers by tensorKey, the last one still being written. */
class TensorStore {
  readonly tensors = new Map<string, GpuTensor>();
  /** Tensors reserved but not yet uploaded. */
  private readonly pending = new Map<string, PendingTensor>();
  readonly missing: string[] = [];

  constructor(private readonly device: GPUDevice, private readonly maxBindingBytes: number) {}

  reserve(key: string, type: WeightType, rows: number, cols: number, bytesPerRow: number): Uint8Array {
    if (this.tensors.has(key) || this.pending.has(key)) throw new KernelError('MODEL_INVALID', `Tensor ${key} (kind or kind:layer) was given twice.`);
    this.flush();
    const pending = new PendingTensor(this.device, planTensor(type, rows, cols, bytesPerRow, this.maxBindingBytes), `${key} ${typeName(type)}`);
    this.pending.set(key, pending);
    return pending.view;
  }

  flush(): void {
    for (const [key, p] of this.pending) this.tensors.set(key, p.finish());
    this.pending.clear();
  }

  /** The tensor, or undefined after noting it in `missing`. */
  get(kind: number, layer = 0): GpuTensor {
    const tensor = this.tensors.get(tensorKey(kind, layer));
    if (!tensor) this.missing.push(tensorKey(kind, layer));
    return tensor!;
  }

  layers(count: number): LayerWeights[] {
    return Array.from({ length: count }, (_, l) => ({
      attnNorm: this.get(TensorKind.attnNorm, l), q: this.get(TensorKind.attnQ, l), k: this.get(TensorKind.attnK, l), v: this.get(TensorKind.attnV, l),
      attnOutput: this.get(TensorKind.attnOutput, l), ffnNorm: this.get(TensorKind.ffnNorm, l),
      gate: this.get(TensorKind.ffnGate, l), up: this.get(TensorKind.ffnUp, l), down: this.get(TensorKind.ffnDown, l),
    }));
  }

  destroy(): void {
    for (const p of this.pending.values()) for (const c of p.tensor.chunks) c.buffer.destroy();
    for (const t of this.tensors.values()) for (const c of t.chunks) c.buffer.destroy();
    this.pending.clear();
    this.tensors.clear();
  }
}

/** One decoder stack: its config, tensors, forward plan once ready, and the batch size of its last forward. */
interface Stack<S extends Scratch = Scratch> {
  config: ModelConfig;
  store: TensorStore;
  plan?: ForwardPlan<S>;
  lastN: number;
}

/** Where a recycle pass takes its hidden rows from. */
export type HiddenSource = 'base' | 'head';

/** A head pass's hidden rows: consecutive rows of `hidden` from `fromRow`. */
interface Join {
  hidden: GPUBuffer;
  fromRow: number;
}

/**
 * A llama model whose weights live in GPU buffers as their GGUF bytes; each forward is one command buffer.
 * Mirrors the WASM model: reserve every tensor, ready(), then forward(tokens, pos, logitsFrom); optionally a
 * recycle head (attachRecycle, recycleReserve, recycleReady, recycleForward) with its own layers and KV cache.
 */
export class WebGPUModel {
  private readonly kernels: KernelCache;
  private readonly maxBindingBytes: number;
  private readonly base: Stack;
  private head: Stack<RecycleScratch> | undefined;
  private lostReason: string | undefined;
  private disposed = false;
  /** Forwards share scratch and readback buffers (and a head pass reads the base's hidden rows), so they run one after another. */
  private queue: Promise<unknown> = Promise.resolve();
  /** GPU → CPU readbacks so far and their bytes: each one is a round trip that waits for the GPU. */
  readonly readbacks = { count: 0, bytes: 0 };
  /** The chained head passes' steps of one draftAndCheck, copied into the head's uniform before each pass. */
  private readonly headSteps: GPUBuffer;

  private constructor(readonly device: GPUDevice, readonly config: ModelConfig, options: WebGPUModelOptions) {
    this.kernels = new KernelCache(device);
    const limits = device.limits;
    this.maxBindingBytes = Math.min(options.maxBindingBytes ?? Infinity, limits.maxStorageBufferBindingSize, limits.maxBufferSize);
    this.base = { config, store: new TensorStore(device, this.maxBindingBytes), lastN: 0 };
    this.headSteps = device.createBuffer({ label: 'head_steps', size: 16 * MAX_BATCH, usage: GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
    void device.lost.then((info) => {
      this.lostReason = info.message || info.reason;
    });
  }

  static async create(config: ModelConfig, options: WebGPUModelOptions = {}): Promise<WebGPUModel> {
    validateConfig(config);
    return new WebGPUModel(options.device ?? (await requestDevice()), config, options);
  }

  /** Rows one recycle pass takes at most; 0 without a head. */
  get recycleMaxBatch(): number {
    return this.head?.config.maxBatch ?? 0;
  }

  /**
   * Room for one tensor's `byteSize` GGUF bytes. Write them before the next reserve() or ready(): that is when they
   * are uploaded (a tensor that fits one GPU buffer is written straight into mapped GPU memory).
   */
  reserve(kind: number, layer: number, type: number, rows: number, cols: number, byteSize: number): Uint8Array {
    return this.reserveIn(this.base, expectedShape(this.config, kind), kind, layer, type, rows, cols, byteSize);
  }

  /** Uploads the last tensor, checks that all are present and prepares the forward (scratch, KV cache, pipelines). */
  async ready(): Promise<void> {
    this.assertUsable();
    const { store } = this.base;
    this.base.plan ??= await this.build(store, () => {
      const weights = { ...this.sharedWeights(), outputNorm: store.get(TensorKind.outputNorm), layers: store.layers(this.config.layers) };
      return store.missing.length === 0 ? buildForward(this.kernels, this.config, weights) : undefined;
    });
  }

  /** Attaches a recycle head (the rg_recycle_new fields); its tensors follow through recycleReserve. */
  attachRecycle(config: RecycleConfig): void {
    this.assertUsable();
    if (this.head) throw invalidArgument('A recycle head is attached already; load the model again to use another.');
    const full = { ...config, vocabSize: this.config.vocabSize, dim: this.config.dim };
    validateConfig(full);
    this.head = { config: full, store: new TensorStore(this.device, this.maxBindingBytes), lastN: 0 };
  }

  /** As reserve(), for the head: kind 0 is its projection (dim × 2·dim), kind 2 is refused (the base's output matrix is used). */
  recycleReserve(kind: number, layer: number, type: number, rows: number, cols: number, byteSize: number): Uint8Array {
    const head = this.assertHead();
    return this.reserveIn(head, expectedRecycleShape(head.config, kind), kind, layer, type, rows, cols, byteSize);
  }

  /** After ready(): uploads the head's last tensor, checks that all are present and prepares its forward. */
  async recycleReady(): Promise<void> {
    const head = this.assertHead();
    this.assertReady();
    const { store } = head;
    head.plan ??= await this.build(store, () => {
      const weights = {
        ...this.sharedWeights(),
        proj: store.get(RecycleKind.proj),
        outputNorm: store.get(RecycleKind.outputNorm),
        layers: store.layers(head.config.layers),
      };
      return store.missing.length === 0 ? buildRecycleForward(this.kernels, head.config, weights) : undefined;
    });
  }

  /**
   * Runs tokens at positions pos..pos+n-1 (their KV entries are (over)written) and reads back, for rows logitsFrom..n
   * (none when logitsFrom = n): the argmax token ids (default), the logits [rows × n_vocab], or the top k ids with their logits.
   */
  forward(tokens: ArrayLike<number>, pos: number, logitsFrom: number, output?: 'argmax'): Promise<Uint32Array>;
  forward(tokens: ArrayLike<number>, pos: number, logitsFrom: number, output: 'logits'): Promise<Float32Array>;
  forward(tokens: ArrayLike<number>, pos: number, logitsFrom: number, output: { topK: number }): Promise<TopK>;
  forward(tokens: ArrayLike<number>, pos: number, logitsFrom: number, output: ForwardOutput): Promise<Uint32Array | Float32Array | TopK>;
  forward(tokens: ArrayLike<number>, pos: number, logitsFrom: number, output: ForwardOutput = 'argmax'): Promise<Uint32Array | Float32Array | TopK> {
    this.assertReady();
    const step = checkForward(this.config, tokens, pos, logitsFrom, output);
    const ids = Uint32Array.from(tokens);
    return this.serialize(() => this.run(this.base, ids, step, output));
  }

  /**
   * The head on `tokens` at positions pos…: row i is [hidden row fromRow + i of the last base forward ('base') or
   * head forward ('head') ; embedding of tokens[i]] (rows are copied before anything is written), then the head's
   * layers over its own KV cache, its final RMSNorm and the base's output matrix. Reads back as forward() does.
   */
  recycleForward(source: HiddenSource, fromRow: number, tokens: ArrayLike<number>, pos: number, logitsFrom: number, output?: 'argmax'): Promise<Uint32Array>;
  recycleForward(source: HiddenSource, fromRow: number, tokens: ArrayLike<number>, pos: number, logitsFrom: number, output: 'logits'): Promise<Float32Array>;
  recycleForward(source: HiddenSource, fromRow: number, tokens: ArrayLike<number>, pos: number, logitsFrom: number, output: { topK: number }): Promise<TopK>;
  recycleForward(source: HiddenSource, fromRow: number, tokens: ArrayLike<number>, pos: number, logitsFrom: number, output: ForwardOutput): Promise<Uint32Array | Float32Array | TopK>;
  recycleForward(source: HiddenSource, fromRow: number, tokens: ArrayLike<number>, pos: number, logitsFrom: number, output: ForwardOutput = 'argmax'): Promise<Uint32Array | Float32Array | TopK> {
    const head = this.assertHead();
    if (!head.plan) throw invalidArgument('Call recycleReady() after reserving every head tensor, before recycleForward().');
    const step = checkForward(head.config, tokens, pos, logitsFrom, output);
    const ids = Uint32Array.from(tokens);
    if (source !== 'base' && source !== 'head') throw invalidArgument(`The hidden rows come from 'base' or 'head', got ${String(source)}.`);
    return this.serialize(() => {
      const from = source === 'base' ? this.base : head;
      if (!Number.isInteger(fromRow) || fromRow < 0 || fromRow + step.n > from.lastN) {
        throw invalidArgument(`Hidden rows ${fromRow}..${fromRow + step.n - 1} are not in the last ${source} forward (${from.lastN} rows).`);
      }
      return this.run(head, ids, step, output, { hidden: from.plan!.scratch.hidden, fromRow });
    });
  }

  /**
   * Greedy drafting and its check in one submission and one readback (4 bytes a token), where separate passes would
   * each wait for the GPU. The head runs on `headTokens` at positions pos - headTokens.length + 1 … pos, with hidden
   * rows from `fromRow` of the last base forward, and its last row's argmax is the first draft; each further draft
   * is the argmax of a chained head pass on the previous one, fed on the GPU. Then the base runs
   * [headTokens[last], ...drafts] at `pos`, keeping rows logitsFrom… as `output` says: their argmax (`ids`, one a row)
   * or their top k (`ids` and `logits`, k a row). The same kernels and buffers as recycleForward() and forward(), so
   * the same numbers.
   */
  draftAndCheck(
    fromRow: number,
    headTokens: ArrayLike<number>,
    pos: number,
    drafts: number,
    logitsFrom: number,
    output: 'argmax' | { topK: number } = 'argmax',
  ): Promise<{ drafts: Uint32Array; ids: Uint32Array; logits?: Float32Array }> {
    const head = this.assertHead();
    if (!head.plan) throw invalidArgument('Call recycleReady() after reserving every head tensor, before draftAndCheck().');
    const headPos = pos - headTokens.length + 1;
    const first = checkForward(head.config, headTokens, headPos, headTokens.length - 1, 'argmax');
    if (!Number.isInteger(drafts) || drafts < 1 || drafts >= this.config.maxBatch) throw invalidArgument(`drafts must be in 1..${this.config.maxBatch - 1}, got ${String(drafts)}.`);
    const check = checkForward(this.config, new Array<number>(drafts + 1).fill(0), pos, logitsFrom, output);
    const k = output === 'argmax' ? 1 : output.topK;
    if (pos + drafts - 1 >= head.config.contextLength) throw new KernelError('CONTEXT_FULL', `Draft positions up to ${pos + drafts - 1} do not fit the head's KV cache of ${head.config.contextLength} tokens.`);
    const headIds = Uint32Array.from(headTokens);
    return this.serialize(async () => {
      this.assertUsable();
      if (!Number.isInteger(fromRow) || fromRow < 0 || fromRow + first.n > this.base.lastN) {
        throw invalidArgument(`Hidden rows ${fromRow}..${fromRow + first.n - 1} are not in the last base forward (${this.base.lastN} rows).`);
      }
      const { device } = this;
      const heads = head.plan!.scratch;
      const base = this.base.plan!.scratch;
      const steps = [first, ...Array.from({ length: drafts - 1 }, (_, j) => ({ n: 1, pos: pos + 1 + j, logitsFrom: 0 }))];
      device.queue.writeBuffer(this.headSteps, 0, new Uint32Array(steps.flatMap((step) => [...stepWords(step)])));
      device.queue.writeBuffer(heads.tokens, 0, headIds);
      device.queue.writeBuffer(base.tokens, 0, headIds.subarray(headIds.length - 1));
      device.queue.writeBuffer(base.step, 0, stepWords(check));
      device.pushErrorScope('validation');
      const encoder = device.createCommandEncoder();
      const rows = check.n - check.logitsFrom;
      // Readback: the drafts, then the check rows' ids and (top k) their logits.
      steps.forEach((step, j) => {
        encoder.copyBufferToBuffer(this.headSteps, 16 * j, heads.step, 0, 16);
        // A chained pass reads the head's own last hidden row and the draft just made.
        if (j > 0) encoder.copyBufferToBuffer(heads.topIds, 0, heads.tokens, 0, 4);
        this.encodeForward(encoder, head, step, 1, { hidden: j === 0 ? base.hidden : heads.hidden, fromRow: j === 0 ? fromRow : steps[j - 1]!.n - 1 });
        encoder.copyBufferToBuffer(heads.topIds, 0, base.tokens, 4 * (1 + j), 4);
        encoder.copyBufferToBuffer(heads.topIds, 0, base.readback, 4 * j, 4);
      });
      this.encodeForward(encoder, this.base, check, rows > 0 ? k : 0);
      const idsOnly = output === 'argmax';
      const bytes = (await this.submit(encoder, base.readback, this.encodeRowsReadback(encoder, this.base, rows, k, idsOnly, 4 * drafts)))!;
      const ids = new Uint32Array(bytes, 4 * drafts, rows * k);
      const logits = idsOnly ? undefined : new Float32Array(bytes, 4 * drafts + 4 * rows * k, rows * k);
      return { ids, logits, drafts: new Uint32Array(bytes, 0, drafts) };
    });
  }

  /** Hidden states of the last forward: [n × dim], after the final RMSNorm. */
  hidden(): Promise<Float32Array> {
    this.assertReady();
    return this.serialize(() => this.readHidden(this.base));
  }

  /** Hidden states of the last head forward: [n × dim], after the head's final RMSNorm. */
  recycleHidden(): Promise<Float32Array> {
    const head = this.assertHead();
    return this.serialize(() => this.readHidden(head));
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.headSteps.destroy();
    for (const stack of [this.base, this.head]) {
      if (!stack) continue;
      stack.store.destroy();
      for (const buffer of stack.plan?.buffers ?? []) buffer.destroy();
      stack.plan = undefined;
    }
  }

  private reserveIn(stack: Stack<Scratch>, shape: [number, number] | undefined, kind: number, layer: number, type: number, rows: number, cols: number, byteSize: number): Uint8Array {
    this.assertUsable();
    if (stack.plan) throw invalidArgument('A tensor was reserved after ready(); load every tensor first.');
    if (!shape) throw new KernelError('MODEL_INVALID', `Unknown tensor kind ${kind}; see the kinds in docs/ARCHITECTURE.md.`);
    if (!isGlobalKind(kind) && !(Number.isInteger(layer) && layer >= 0 && layer < stack.config.layers)) {
      throw new KernelError('MODEL_INVALID', `Layer ${layer} is out of range: there are ${stack.config.layers} layers.`);
    }
    if (rows !== shape[0] || cols !== shape[1]) {
      throw new KernelError('MODEL_INVALID', `Tensor kind ${kind} (layer ${layer}) is ${rows} × ${cols}, expected ${shape[0]} × ${shape[1]}; the GGUF metadata and tensors disagree.`);
    }
    const problem = tensorProblem(kind, type);
    if (problem) throw new KernelError('GGUF_UNSUPPORTED', `The WebGPU backend cannot take tensor kind ${kind}: ${problem}; use the wasm backend.`);
    if (!Number.isSafeInteger(byteSize) || byteSize <= 0 || byteSize % rows !== 0) {
      throw new KernelError('MODEL_INVALID', `Tensor kind ${kind} (layer ${layer}) of ${rows} rows cannot take ${byteSize} bytes; give its GGUF byte size.`);
    }
    return stack.store.reserve(tensorKey(kind, layer), type as WeightType, rows, cols, byteSize / rows);
  }

  /** Uploads the store's last tensor and builds a plan under error scopes; `plan` gives undefined when tensors are missing. */
  private async build<S extends Scratch>(store: TensorStore, plan: () => ForwardPlan<S> | undefined): Promise<ForwardPlan<S>> {
    store.flush();
    store.missing.length = 0;
    this.device.pushErrorScope('out-of-memory');
    this.device.pushErrorScope('validation');
    const built = plan();
    const validation = await this.device.popErrorScope();
    const oom = await this.device.popErrorScope();
    if (!built) throw new KernelError('MODEL_INVALID', `Tensors missing (kind or kind:layer): ${store.missing.join(', ')}; the GGUF file is incomplete.`);
    if (oom) throw new KernelError('OUT_OF_MEMORY', `The GPU ran out of memory preparing the model (${oom.message}); use a smaller context or the wasm backend.`);
    if (validation) throw engineError(`WebGPU rejected the forward pass: ${validation.message}`);
    return built;
  }

  /** The base's embedding table and output matrix (token_embd when tied), which a recycle head uses too. */
  private sharedWeights(): { tokenEmbd: GpuTensor; output: GpuTensor } {
    const { store } = this.base;
    const tokenEmbd = store.get(TensorKind.tokenEmbd);
    return { tokenEmbd, output: store.tensors.get(tensorKey(TensorKind.output, 0)) ?? tokenEmbd };
  }

  private assertUsable(): void {
    if (this.disposed) throw new KernelError('DISPOSED', 'This WebGPU model was disposed; load it again.');
    if (this.lostReason !== undefined) throw engineError(`The GPU device was lost (${this.lostReason}); load the model again.`);
  }

  private assertReady(): ForwardPlan {
    this.assertUsable();
    if (!this.base.plan) throw invalidArgument('Call ready() after reserving every tensor, before forward().');
    return this.base.plan;
  }

  private assertHead(): Stack<RecycleScratch> {
    this.assertUsable();
    if (!this.head) throw invalidArgument('No recycle head is attached; call attachRecycle() first.');
    return this.head;
  }

  private serialize<T>(job: () => Promise<T>): Promise<T> {
    const result = this.queue.then(job);
    this.queue = result.catch(() => undefined);
    return result;
  }

  private async run(stack: Stack<Scratch>, tokens: Uint32Array<ArrayBuffer>, step: Step, output: ForwardOutput, join?: Join): Promise<Uint32Array | Float32Array | TopK> {
    this.assertUsable();
    const { scratch } = stack.plan!;
    const { device } = this;
    device.queue.writeBuffer(scratch.step, 0, stepWords(step));
    device.queue.writeBuffer(scratch.tokens, 0, tokens);
    const rows = step.n - step.logitsFrom;
    const k = rows === 0 || output === 'logits' ? 0 : output === 'argmax' ? 1 : output.topK;
    // A rejected command buffer would leave the last forward's results in the readback buffer: surface it instead.
    device.pushErrorScope('validation');
    const encoder = device.createCommandEncoder();
    this.encodeForward(encoder, stack, step, k, join);
    const idsOnly = output === 'argmax';
    const bytes = await this.submit(encoder, scratch.readback, this.encodeRowsReadback(encoder, stack, rows, k, idsOnly, 0));
    if (!bytes) return output === 'logits' ? new Float32Array(0) : idsOnly ? new Uint32Array(0) : { ids: new Uint32Array(0), logits: new Float32Array(0) };
    if (k === 0) return new Float32Array(bytes);
    const ids = new Uint32Array(bytes, 0, rows * k);
    return idsOnly ? ids : { ids, logits: new Float32Array(bytes, 4 * rows * k, rows * k) };
  }

  /**
   * Copies a forward's `rows` kept rows into its readback buffer from byte `at`: their logits (k = 0), else k ids a
   * row and, unless `idsOnly` (an argmax), their logits after them. Returns where the copies end.
   */
  private encodeRowsReadback(encoder: GPUCommandEncoder, stack: Stack<Scratch>, rows: number, k: number, idsOnly: boolean, at: number): number {
    const { scratch } = stack.plan!;
    if (rows === 0) return at;
    if (k === 0) {
      const bytes = 4 * rows * stack.config.vocabSize;
      encoder.copyBufferToBuffer(scratch.logits, 0, scratch.readback, at, bytes);
      return at + bytes;
    }
    const bytes = 4 * rows * k;
    encoder.copyBufferToBuffer(scratch.topIds, 0, scratch.readback, at, bytes);
    if (idsOnly) return at + bytes;
    encoder.copyBufferToBuffer(scratch.topValues, 0, scratch.readback, at + bytes, bytes);
    return at + 2 * bytes;
  }

  /** One forward's compute passes (with k > 0, the top-k selection) into `encoder`; the step and tokens are in place by then. */
  private encodeForward(encoder: GPUCommandEncoder, stack: Stack<Scratch>, step: Step, k: number, join?: Join): void {
    const plan = stack.plan!;
    const rest = [...plan.body, ...(step.n > step.logitsFrom ? plan.output : []), ...(k > 0 ? [plan.select(k)] : [])];
    if (join) {
      this.encodeJoined(encoder, plan as ForwardPlan<RecycleScratch>, step, join.hidden, join.fromRow);
      computePass(encoder, rest, step);
    } else {
      computePass(encoder, [...plan.input, ...rest], step);
    }
    stack.lastN = step.n;
  }

  /**
   * Submits `encoder` (opened after a pushErrorScope('validation')) and returns the first `bytes` of `readback`
   * (undefined for 0). The map request goes out with the submit, not after the error check: each is a wait on the GPU.
   */
  private async submit(encoder: GPUCommandEncoder, readback: GPUBuffer, bytes: number): Promise<ArrayBuffer | undefined> {
    this.device.queue.submit([encoder.finish()]);
    const mapped = bytes === 0 ? undefined : this.mapReadback(readback, bytes);
    // Handled now, so that a mapping refused before the error scope settles is not reported as unhandled.
    const settled = mapped?.catch((cause: unknown) => cause);
    const error = await this.device.popErrorScope();
    if (error) {
      await settled;
      throw engineError(`WebGPU rejected the forward pass: ${error.message}`);
    }
    return mapped;
  }

  /** The head's input rows [hidden ; embedding]: hidden rows are copied first (they may be the head's own), embeddings after their pass. */
  private encodeJoined(encoder: GPUCommandEncoder, plan: ForwardPlan<RecycleScratch>, step: Step, hidden: GPUBuffer, fromRow: number): void {
    const rowBytes = this.config.dim * 4;
    const { joined, embedded } = plan.scratch;
    for (let i = 0; i < step.n; i++) encoder.copyBufferToBuffer(hidden, (fromRow + i) * rowBytes, joined, 2 * i * rowBytes, rowBytes);
    computePass(encoder, plan.input, step);
    for (let i = 0; i < step.n; i++) encoder.copyBufferToBuffer(embedded, i * rowBytes, joined, (2 * i + 1) * rowBytes, rowBytes);
  }

  private async readHidden(stack: Stack<Scratch>): Promise<Float32Array> {
    this.assertUsable();
    const { scratch } = stack.plan!;
    const bytes = stack.lastN * this.config.dim * 4;
    if (bytes === 0) return new Float32Array(0);
    const encoder = this.device.createCommandEncoder();
    encoder.copyBufferToBuffer(scratch.hidden, 0, scratch.readback, 0, bytes);
    this.device.queue.submit([encoder.finish()]);
    return new Float32Array(await this.mapReadback(scratch.readback, bytes));
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
    this.readbacks.count++;
    this.readbacks.bytes += bytes;
    return copy;
  }
}

function computePass(encoder: GPUCommandEncoder, dispatches: Dispatch[], step: Step): void {
  const pass = encoder.beginComputePass();
  encodeDispatches(pass, dispatches, step);
  pass.end();
}

function checkForward(config: ModelConfig, tokens: ArrayLike<number>, pos: number, logitsFrom: number, output: ForwardOutput): Step {
  const { maxBatch, contextLength, vocabSize } = config;
  const n = tokens?.length;
  if (!Number.isInteger(n) || n < 1 || n > maxBatch) throw invalidArgument(`A forward takes 1..${maxBatch} tokens, got ${String(n)}.`);
  for (let i = 0; i < n; i++) {
    const t = tokens[i]!;
    if (!Number.isInteger(t) || t < 0 || t >= vocabSize) throw invalidArgument(`Token ${String(t)} at index ${i} is not in the vocabulary (0..${vocabSize - 1}).`);
  }
  if (!Number.isInteger(pos) || pos < 0) throw invalidArgument(`The first position must be an integer ≥ 0, got ${String(pos)}.`);
  if (pos + n > contextLength) {
    throw new KernelError('CONTEXT_FULL', `Positions ${pos}..${pos + n - 1} do not fit the KV cache of ${contextLength} tokens; start a new sequence or load with a larger context.`);
  }
  if (!Number.isInteger(logitsFrom) || logitsFrom < 0 || logitsFrom > n) throw invalidArgument(`logitsFrom must be in 0..${n}, got ${String(logitsFrom)}.`);
  if (typeof output === 'object') {
    const k = output?.topK;
    if (!Number.isInteger(k) || k < 1 || k > Math.min(MAX_TOP_K, vocabSize)) throw invalidArgument(`topK must be in 1..${Math.min(MAX_TOP_K, vocabSize)}, got ${String(k)}.`);
  } else if (output !== 'argmax' && output !== 'logits') {
    throw invalidArgument(`output must be 'argmax', 'logits' or { topK }, got ${String(output)}.`);
  }
  return { n, pos, logitsFrom };
}

export type { ModelConfig, RecycleConfig };
