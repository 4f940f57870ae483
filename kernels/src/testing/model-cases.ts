/// <reference types="@webgpu/types" />
import { WebGPUModel } from '../backend.js';
import { TensorKind, type ModelConfig } from '../config.js';
import { KernelError } from '../errors.js';
import { GGMLType, type WeightType } from '../ggml.js';
import { ReferenceModel, topKRef } from '../reference.js';
import type { Check } from './cases.js';
import { tinyModel, type TinyModel } from './tiny-model.js';

/**
 * Whole-model logits may differ from the reference forward by this much, relative to the largest |logit|
 * (measured: ≤ 4e-7). f32 rounding differences accumulate over layers, and with an f16 KV cache a 1-ulp f32
 * difference can flip a value to the neighbouring half, so this is looser than the kernel tolerance.
 */
export const MODEL_TOLERANCE = 1e-4;

const baseConfig: ModelConfig = {
  vocabSize: 300, dim: 64, layers: 2, heads: 4, kvHeads: 2, ffnDim: 96, contextLength: 40, headDim: 16, ropeDim: 16,
  ropeFreqBase: 10000, rmsEps: 1e-5, kvType: 'f16', maxBatch: 8,
};

async function load(device: GPUDevice, model: TinyModel, maxBindingBytes?: number): Promise<WebGPUModel> {
  const gpu = await WebGPUModel.create(model.config, { device, maxBindingBytes });
  for (const t of model.tensors) gpu.reserve(t.kind, t.layer, t.type, t.rows, t.cols, t.bytes.length).set(t.bytes);
  await gpu.ready();
  return gpu;
}

function logitsCheck(what: string, got: Float32Array, want: Float32Array): Check & { limit: number } {
  let error = 0, scale = 1;
  for (let i = 0; i < want.length; i++) {
    error = Math.max(error, Math.abs(got[i]! - want[i]!));
    scale = Math.max(scale, Math.abs(want[i]!));
  }
  return { what, error: got.length === want.length ? error : Infinity, limit: MODEL_TOLERANCE * scale };
}

/** Prompt as one batch, then greedy decoding on the GPU (argmax kernel) against the reference; then batch-vs-single equality. */
async function modelCase(device: GPUDevice, model: TinyModel, maxBindingBytes?: number): Promise<Check[]> {
  const { vocabSize } = model.config;
  const gpu = await load(device, model, maxBindingBytes);
  const ref = new ReferenceModel(model.config, model.weights);
  const checks: Check[] = [];
  const prompt = [1, 42, 7, 299, 150];
  const promptLogits = await gpu.forward(prompt, 0, 0, 'logits');
  const promptRef = ref.forward(prompt, 0);
  checks.push(logitsCheck('prompt logits (batch of 5)', promptLogits, promptRef.logits));
  const hidden = await gpu.hidden();
  checks.push(logitsCheck('prompt hidden states', hidden, promptRef.hidden));

  // Greedy decoding: both sides continue with the reference's pick, so one near tie cannot derail the rest.
  const picks: { got: number; want: number }[] = [];
  let nearTies = 0;
  let gpuPick = (await gpu.forward(prompt, 0, prompt.length - 1, 'argmax'))[0]!;
  let refRow = promptRef.logits.subarray((prompt.length - 1) * vocabSize);
  let pos = prompt.length;
  let lastToken = -1;
  for (; pos < prompt.length + 12; pos++) {
    const [best, second] = topKRef(refRow, 2) as [number, number];
    if (refRow[best]! - refRow[second]! < 2 * logitsCheck('', refRow, refRow).limit) nearTies++;
    else picks.push({ got: gpuPick, want: best });
    lastToken = best;
    gpuPick = (await gpu.forward([best], pos, 0, 'argmax'))[0]!;
    refRow = ref.forward([best], pos).logits;
  }
  checks.push({ what: `greedy tokens (${nearTies} near ties skipped)`, got: picks.map((p) => p.got), want: picks.map((p) => p.want) });

  // Rerunning the last position rewrites its KV entries with the same values.
  const lastLogits = await gpu.forward([lastToken], pos - 1, 0, 'logits');
  checks.push(logitsCheck('logits after 12 decoded tokens', lastLogits, refRow));
  const top = await gpu.forward([lastToken], pos - 1, 0, { topK: 5 });
  const wantTop = topKRef(lastLogits, 5);
  checks.push({ what: 'top-5 ids and logits', got: [...top.ids, ...top.logits], want: [...wantTop, ...wantTop.map((i) => lastLogits[i]!)] });

  // A batched forward computes each token's numbers exactly as single-token forwards do.
  let batchError = 0;
  for (let t = 0; t < prompt.length; t++) {
    const single = await gpu.forward([prompt[t]!], t, 0, 'logits');
    single.forEach((v, i) => (batchError = Math.max(batchError, Math.abs(v - promptLogits[t * vocabSize + i]!))));
  }
  checks.push({ what: 'batch of 5 equals 5 single-token forwards', error: batchError, limit: 0 });
  gpu.dispose();
  return checks;
}

/** Typed errors for misuse: wrong shapes and types, missing tensors, bad tokens, positions and options, use after dispose. */
async function errorsCase(device: GPUDevice): Promise<Check[]> {
  const config = { ...baseConfig, layers: 1 };
  const codeOf = async (action: () => unknown): Promise<string> => {
    try {
      await action();
      return 'no error';
    } catch (e) {
      return e instanceof KernelError ? e.code : `untyped ${String(e)}`;
    }
  };
  const model = tinyModel({ config, seed: 9, types: () => GGMLType.Q8_0, tiedOutput: true });
  const gpu = await WebGPUModel.create(config, { device });
  const checks: [string, string, string][] = [
    ['config with head_dim odd', await codeOf(() => WebGPUModel.create({ ...config, headDim: 15 }, { device })), 'MODEL_INVALID'],
    ['reserve with a wrong shape', await codeOf(() => gpu.reserve(TensorKind.attnQ, 0, GGMLType.Q8_0, 64, 32, 64 * 34)), 'MODEL_INVALID'],
    ['reserve of an unknown kind', await codeOf(() => gpu.reserve(12, 0, GGMLType.Q8_0, 64, 64, 64 * 68)), 'MODEL_INVALID'],
    ['reserve of a Q4_1 tensor', await codeOf(() => gpu.reserve(TensorKind.attnQ, 0, 3, 64, 64, 64 * 40)), 'GGUF_UNSUPPORTED'],
    ['reserve past the last layer', await codeOf(() => gpu.reserve(TensorKind.attnQ, 1, GGMLType.Q8_0, 64, 64, 64 * 68)), 'MODEL_INVALID'],
    ['forward before ready', await codeOf(() => gpu.forward([1], 0, 0)), 'INVALID_ARGUMENT'],
    ['ready with tensors missing', await codeOf(() => gpu.ready()), 'MODEL_INVALID'],
  ];
  gpu.reserve(TensorKind.outputNorm, 0, GGMLType.F32, 1, config.dim, 4 * config.dim);
  checks.push(
    ['reserve twice', await codeOf(() => gpu.reserve(TensorKind.outputNorm, 0, GGMLType.F32, 1, config.dim, 4 * config.dim)), 'MODEL_INVALID'],
    ['norm weights in Q8_0', await codeOf(() => gpu.reserve(TensorKind.attnNorm, 0, GGMLType.Q8_0, 1, config.dim, 34 * config.dim / 32)), 'GGUF_UNSUPPORTED'],
  );
  const fresh = await load(device, model);
  checks.push(
    ['token out of the vocabulary', await codeOf(() => fresh.forward([300], 0, 0)), 'INVALID_ARGUMENT'],
    ['too many tokens', await codeOf(() => fresh.forward(new Array(9).fill(1), 0, 0)), 'INVALID_ARGUMENT'],
    ['positions past the context', await codeOf(() => fresh.forward([1, 2], 39, 0)), 'CONTEXT_FULL'],
    ['logitsFrom past the batch', await codeOf(() => fresh.forward([1, 2], 0, 3)), 'INVALID_ARGUMENT'],
    ['logitsFrom = n (no logits)', await codeOf(async () => {
      if ((await fresh.forward([1, 2], 0, 2, 'logits')).length !== 0) throw new Error('logits came back');
    }), 'no error'],
    ['recycle pass without a head', await codeOf(() => fresh.recycleForward('base', 0, [1], 0, 0)), 'INVALID_ARGUMENT'],
    ['topK of 0', await codeOf(() => fresh.forward([1], 0, 0, { topK: 0 })), 'INVALID_ARGUMENT'],
    ['valid forward', await codeOf(() => fresh.forward([1, 2], 38, 1)), 'no error'],
  );
  fresh.dispose();
  checks.push(['forward after dispose', await codeOf(() => fresh.forward([1], 0, 0)), 'DISPOSED']);
  gpu.dispose();
  return checks.map(([what, got, want]) => ({ what, got, want }));
}

const allQ8 = (): WeightType => GGMLType.Q8_0;
const mixedTypes = (kind: number): WeightType =>
  (({ [TensorKind.tokenEmbd]: GGMLType.F16, [TensorKind.attnOutput]: GGMLType.F32, [TensorKind.ffnGate]: GGMLType.Q4_0, [TensorKind.ffnDown]: GGMLType.Q4_0, [TensorKind.output]: GGMLType.Q4_0 }) as Record<number, WeightType>)[kind] ?? GGMLType.Q8_0;

export const modelCases: Record<string, (device: GPUDevice) => Promise<Check[]>> = {
  // 4 KiB buffers split the 300-row embedding (also the tied output matrix) into 5 chunks.
  'model Q8_0, tied output, f16 KV, split tensors': (device) =>
    modelCase(device, tinyModel({ config: baseConfig, seed: 11, types: allQ8, tiedOutput: true }), 4096),
  'model F16/F32/Q4_0/Q8_0, own output, f32 KV, partial RoPE': (device) =>
    modelCase(device, tinyModel({ config: { ...baseConfig, kvType: 'f32', ropeDim: 8 }, seed: 12, types: mixedTypes, tiedOutput: false })),
  'typed errors': errorsCase,
};
