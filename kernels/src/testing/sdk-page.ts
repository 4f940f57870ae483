/**
 * Browser page of sdk/src/backend-webgpu.test.ts: loads fixture GGUFs (served under /files/) through the SDK on both
 * backends and returns plain numbers and token lists for the test to check in Node.
 */
import type { WebGPULlama } from '../../../sdk/src/backend-webgpu.js';
import { decode } from '../../../sdk/src/generate.js';
import { Sampler } from '../../../sdk/src/sampler.js';
import { openContext } from '../../../sdk/src/model.js';
import { loadModel } from '../../../sdk/src/browser.js';
import type { LoadOptions } from '../../../sdk/src/types.js';

const bytesOf = async (name: string): Promise<Uint8Array> => new Uint8Array(await (await fetch(`/files/${name}`)).arrayBuffer());

async function options(backend: 'wasm' | 'webgpu' | 'auto', extra: LoadOptions = {}): Promise<LoadOptions> {
  return { backend, wasm: await bytesOf('recyclegpt.wasm'), contextLength: 128, ...extra };
}

function argmaxOf(row: Float32Array): { best: number; margin: number } {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i]! > row[best]!) best = i;
  let second = -Infinity;
  for (let i = 0; i < row.length; i++) if (i !== best) second = Math.max(second, row[i]!);
  return { best, margin: row[best]! - second };
}

const maxAbs = (rows: Float32Array[]): number => rows.reduce((m, r) => r.reduce((a, v) => Math.max(a, Math.abs(v)), m), 0);
const maxDiff = (a: Float32Array[], b: Float32Array[]): number =>
  a.reduce((m, row, r) => row.reduce((x, v, i) => Math.max(x, Math.abs(v - b[r]![i]!)), m), 0);

/**
 * Greedy decoding on both backends, then both evaluate (teacher-forced) the WASM sequence: the largest logit
 * difference, and the WASM top-2 margin at each position whose argmax differs (the test tells near ties from errors).
 */
async function compare(model: string, prompt: number[], tokens: number) {
  const file = await bytesOf(model);
  const wasm = await loadModel(file, await options('wasm'));
  const gpu = await loadModel(file, await options('webgpu'));
  const greedy = { maxTokens: tokens, temperature: 0 };
  const wasmTokens = (await wasm.complete(prompt, greedy)).tokens;
  const gpuTokens = (await gpu.complete(prompt, greedy)).tokens;
  const sequence = [...prompt, ...wasmTokens];
  const wasmRows = await wasm.evaluate(sequence);
  const gpuRows = await gpu.evaluate(sequence);
  const differingMargins = wasmRows.flatMap((row, i) => {
    const want = argmaxOf(row);
    return argmaxOf(gpuRows[i]!).best === want.best ? [] : [want.margin];
  });
  const result = {
    backends: [wasm.info.backend, gpu.info.backend], positions: sequence.length, maxError: maxDiff(gpuRows, wasmRows), scale: maxAbs(wasmRows),
    differingMargins, wasmTokens, gpuTokens,
  };
  wasm.dispose();
  gpu.dispose();
  return result;
}

/** Greedy tokens of each decode mode on WebGPU with a recycle head, and the head's numbers against the WASM head's. */
async function recycle(model: string, head: string, prompt: number[], tokens: number) {
  const file = await bytesOf(model);
  const recycleFile = await bytesOf(head);
  const gpu = await loadModel(file, await options('webgpu', { recycle: recycleFile }));
  const modes = {} as Record<string, { tokens: number[]; fullPasses: number; accepted: number }>;
  for (const mode of ['off', 'exact', 'chain'] as const) {
    const out = await gpu.complete(prompt, { maxTokens: tokens, temperature: 0, decode: { mode } });
    modes[mode] = { tokens: out.tokens, fullPasses: out.stats.fullPasses, accepted: out.stats.recycled };
  }
  gpu.dispose();
  return { backend: gpu.info.backend, modes, ...(await headNumbers(file, recycleFile, prompt)) };
}

/**
 * Head passes below the public API on both backends after the same prefill: logits of a 'base' pass and of a
 * chained 'head' pass (WebGPU vs WASM), and on WebGPU a batched 'base' pass against single-row passes (must be equal).
 */
async function headNumbers(file: Uint8Array, recycleFile: Uint8Array, prompt: number[]) {
  const rows: Record<string, Float32Array[]> = {};
  let batchError = 0;
  let fused: Record<string, { separate: number[]; fused: number[] }> = {};
  for (const backend of ['wasm', 'webgpu'] as const) {
    const { context } = await openContext(file, await options(backend, { recycle: recycleFile }));
    const { llama } = context;
    const pos = prompt.length;
    await context.prefill(prompt);
    // The hidden row of the prompt's last position (backends batch the prefill differently).
    await llama.recycleForward('base', pos - 1 - context.lastPassStart, [prompt[0]!], pos, 0);
    const fromBase = llama.recycleLogits(0).slice();
    await llama.recycleForward('head', 0, [prompt[1]!], pos + 1, 0);
    rows[backend] = [fromBase, llama.recycleLogits(0).slice()];
    if (backend === 'webgpu') {
      const batch = prompt.slice(0, 4);
      await llama.forward(batch, 0, 0);
      await llama.recycleForward('base', 0, batch, 1, 0);
      const batched = batch.map((_, i) => llama.recycleLogits(i).slice());
      for (let i = 0; i < batch.length; i++) {
        await llama.recycleForward('base', i, [batch[i]!], 1 + i, 0);
        batchError = Math.max(batchError, maxDiff([llama.recycleLogits(0)], [batched[i]!]));
      }
      fused = await fusedAgainstSeparate(llama as unknown as WebGPULlama, prompt.slice(0, 6));
    }
    llama.free();
  }
  return { headError: maxDiff(rows.webgpu!, rows.wasm!), headScale: maxAbs(rows.wasm!), batchError, fused };
}

/**
 * draftAndCheck (one submission) against the same work as separate passes: three head rows from base hidden rows
 * 3..5, a chained second draft, then the base on [x, d1, d2]; for exact (all rows' picks), fast (the last row's) and
 * sampling (all rows' top 5 candidates) checks.
 */
async function fusedAgainstSeparate(llama: WebGPULlama, prompt: number[]) {
  const x = prompt[0]!;
  const headTokens = [prompt[4]!, prompt[5]!, x];
  const results: Record<string, { separate: number[]; fused: number[] }> = {};
  const cases = [['exact', 0, 'argmax'], ['fast', 2, 'argmax'], ['sampled', 0, { topK: 5 }]] as const;
  for (const [name, logitsFrom, output] of cases) {
    const checked = () =>
      Array.from({ length: 3 - logitsFrom }, (_, r) => (output === 'argmax' ? [llama.argmax(r)] : [...llama.candidates(r).ids, ...llama.candidates(r).logits])).flat();
    await llama.forward(prompt, 0, prompt.length - 1);
    await llama.recycleForward('base', 3, headTokens, 4, 2, 'argmax');
    const d1 = llama.recycleArgmax(0);
    await llama.recycleForward('head', 2, [d1], 7, 0, 'argmax');
    const d2 = llama.recycleArgmax(0);
    await llama.forward([x, d1, d2], 6, logitsFrom, output);
    const separate = [d1, d2, ...checked()];
    await llama.forward(prompt, 0, prompt.length - 1);
    const drafts = await llama.draftAndCheck(3, headTokens, 6, 2, logitsFrom, output);
    results[name] = { separate, fused: [...drafts, ...checked()] };
  }
  return results;
}

/** GPU → CPU readbacks (count and bytes) per decoded token of greedy `off` and `exact` and of sampled `off`. */
async function readbacks(model: string, head: string, prompt: number[], tokens: number) {
  const { context } = await openContext(await bytesOf(model), await options('webgpu', { recycle: await bytesOf(head) }));
  const llama = context.llama as unknown as WebGPULlama;
  const perToken: Record<string, { count: number; bytes: number }> = {};
  const cases = {
    greedy: { temperature: 0 },
    exact: { temperature: 0, decode: { mode: 'exact' as const, adaptive: false } },
    sampled: { temperature: 0.8, seed: 1 },
    sampledExact: { temperature: 0.8, seed: 1, decode: { mode: 'exact' as const, adaptive: false } },
  };
  for (const [name, sampling] of Object.entries(cases)) {
    // Counted from the first token on: the prompt's pass reads back its logits.
    let before = llama.readbacks;
    let decoded = 0;
    for await (const _ of decode(context, prompt, { maxTokens: tokens, ...sampling }, () => {})) {
      if (decoded++ === 0) before = llama.readbacks;
    }
    const after = llama.readbacks;
    perToken[name] = { count: (after.count - before.count) / (decoded - 1), bytes: (after.bytes - before.bytes) / (decoded - 1) };
  }
  // The same sampled decoding, plain and exact (speculative sampling), with the top-k readback turned off (whole
  // logits): the same tokens.
  const sampled = async () => {
    const tokens: number[] = [];
    for (const mode of ['off', 'exact'] as const) {
      const options = { maxTokens: 12, ...cases.sampled, decode: { mode, adaptive: false } };
      for await (const token of decode(context, prompt, options, () => {})) tokens.push(token.id);
    }
    return tokens;
  };
  const fromTop = await sampled();
  Object.defineProperty(llama, 'maxTopK', { value: 0 });
  const fromLogits = await sampled();
  // And on one pass, the candidates' distribution against the whole row's.
  await llama.forward(prompt.slice(0, 4), 0, 0, 'logits');
  const rows = [0, 1, 2, 3].map((r) => llama.logits(r).slice());
  await llama.forward(prompt.slice(0, 4), 0, 0, { topK: 40 });
  const sampler = new Sampler({ temperature: 0.8, seed: 1 });
  const distributionsMatch = rows.every((row, r) => JSON.stringify(sampler.candidateDistribution(llama.candidates(r))) === JSON.stringify(sampler.distribution(row)));
  llama.free();
  return { vocabSize: context.llama.config.vocabSize, perToken, sampledTokens: { fromTop, fromLogits }, distributionsMatch };
}

async function auto(model: string) {
  const loaded = await loadModel(await bytesOf(model), await options('auto'));
  const { backend, backendReason } = loaded.info;
  loaded.dispose();
  return { backend, backendReason };
}

/** null when WebGPU works here, else why not. */
async function unavailable(): Promise<string | null> {
  if (!navigator.gpu) return 'navigator.gpu is missing (WebGPU disabled in this browser)';
  return (await navigator.gpu.requestAdapter()) ? null : 'navigator.gpu.requestAdapter() returned null (no WebGPU adapter)';
}

Object.assign(globalThis, { harness: { unavailable, compare, recycle, readbacks, auto } });
