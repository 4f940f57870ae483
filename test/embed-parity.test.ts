/**
 * model.embed() against llama.cpp's embeddings (node-llama-cpp's embedding context, one thread, flash attention
 * off: the path the engine mirrors) on the same files: llama, qwen3 and gemma3 fixtures in F32 and in llama.cpp's
 * own F16, Q8_0 and Q4_K_M files, each as a chat model has it (no `<arch>.pooling_type`: we pool by the mean) and
 * with the key set to mean, cls and last. Both engines keep llama.cpp's default f16 KV cache; the F32 files run once
 * more with an f32 cache on both sides, which leaves only summation order between them.
 *
 * llama.cpp's embedding API pools as the key says and does not normalise (node-llama-cpp gives that raw vector;
 * llama-server and llama-embedding then divide by the Euclidean norm, common_embd_normalize): raw vectors are
 * compared (normalize: false), and for the chat-model file also our default (normalised) against llama.cpp's
 * vector divided by its norm. Without the key llama.cpp pools nothing (the last token's state): its mean is taken
 * over every position's state (the oracle's meanOfTokenStates), which is what `--pooling mean` computes.
 *
 * Per case, over the texts (one longer than a WASM pass of 32 tokens, and than gemma3's window of 8): the largest
 * |Δ| of any component and the lowest cosine similarity. F32/F16: |Δ| within RELATIVE_BOUND of the largest
 * |component| (only summation order differs). Quantized: within BOUND_VS_SPREAD times llama.cpp's own spread on
 * the same file and texts: its flash-attention against its plain path (every pooling), and for the first token's
 * state its batched matmul kernel against its one-row dot products (the cls rows). A table is printed.
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { withMetadata } from './fixtures/gguf-edit.js';
import { makeTestModel, type ModelSpec } from './fixtures/models.js';
import { llamaQuantize, type LlamaFileType } from './oracle/llama-quantize.js';
import { openLlamaCppEmbedder } from './oracle/llamacpp-embed.js';
import { importSdk, SDK_MISSING_REASON, SDK_READY } from './sdk.js';

const TEXTS = [
  'Once upon a time there was a lighthouse',
  'function add(a, b) {\n  return a + b;\n}',
  'The keeper climbed the stairs every evening to light the lamp, and the ships that passed the rocks at night saw it burning from far away, long after the town had gone to sleep and the harbour was quiet.',
];
/**
 * Largest |Δ| / largest |component| at F32 and F16. With the default f16 KV cache, rounding K, V (and, in llama.cpp,
 * Q and the attention weights) to f16 in slightly different places is amplified by random weights layer by layer:
 * llama.cpp's own flash on/off moves F32 vectors by about 1e-3 of the largest component on gemma3's six layers, we
 * measure 1e-5 to 4.5e-4. With an f32 cache on both sides ('F32 kv32') only summation order is left: 3e-7 on llama
 * and qwen3, up to 1.8e-4 on gemma3 (llama.cpp's GELU reads an f16 table, as far as we know).
 */
const RELATIVE_BOUND = { F32: 1e-3, F16: 2e-3, 'F32 kv32': 5e-4 } as const;
/**
 * Quantized files: the engine takes llama.cpp's plain path; what is left is summation order, which llama.cpp's own
 * kernels also change (flash attention; its batched matmuls against its one-row dot products).
 */
const BOUND_VS_SPREAD = 3;
/**
 * Lowest cosine similarity: F32/F16 vectors point the same way to within float rounding; quantized ones to within
 * what llama.cpp's own kernels change (its flash on/off alone gives 0.9997 on gemma3 Q4_K_M's last pooling).
 */
const MIN_COSINE = { exact: 0.999999, quantized: 0.999 } as const;

const BASE = { layers: 2, ffn: 768, ctx: 256, seed: 31, type: 'F32' } as const;
const ARCHITECTURES: Record<string, ModelSpec> = {
  llama: { ...BASE, arch: 'llama', dim: 256, heads: 4, kvHeads: 2, vocab: 'llama' },
  qwen3: { ...BASE, arch: 'qwen3', dim: 256, heads: 4, kvHeads: 2, headDim: 128, vocab: 'gpt2', tiedOutput: true, ropeFreqBase: 1e6 },
  gemma3: { ...BASE, arch: 'gemma3', layers: 6, dim: 256, heads: 4, kvHeads: 1, headDim: 128, vocab: 'llama', tiedOutput: true, slidingWindow: { size: 8, ropeFreqBase: 10000 } },
};
/** 'F32 kv32': the F32 file with an f32 KV cache in both engines. */
const TYPES = ['F32', 'F32 kv32', 'F16', 'Q8_0', 'Q4_K_M'] as const;
/** llama.cpp's enum llama_pooling_type. */
const POOLING_TYPE = { mean: 1, cls: 2, last: 3 } as const;

interface Row {
  arch: string;
  type: string;
  pooling: string;
  maxDelta: number;
  minCosine: number;
  /** llama.cpp's flash on vs off on this pooling's vectors (not measured for the file without the key). */
  flashSpread?: number;
  /** llama.cpp's own spread on this file: flash on/off over every pooling, batched vs alone for the first token. */
  spread?: number;
  /** Largest |component| of llama.cpp's vectors. */
  scale?: number;
  bound: number;
}
const table: Row[] = [];

afterAll(() => {
  if (table.length === 0) return;
  const head = `${'arch'.padEnd(7)} ${'type'.padEnd(9)} ${'pooling'.padEnd(12)} ${'max|Δ|'.padEnd(10)} ${'min cosine'.padEnd(12)} ${'max|v|'.padEnd(8)} ${'flash on/off'.padEnd(13)} ${'file spread'.padEnd(12)} bound`;
  const e = (x: number | undefined) => (x === undefined ? '—' : x.toExponential(2));
  const lines = table.map((r) =>
    [r.arch.padEnd(7), r.type.padEnd(9), r.pooling.padEnd(12), e(r.maxDelta).padEnd(10), r.minCosine.toFixed(9).padEnd(12), (r.scale ?? 0).toFixed(2).padEnd(8), e(r.flashSpread).padEnd(13), e(r.spread).padEnd(12), e(r.bound)].join(' '),
  );
  console.log(['embeddings vs llama.cpp (raw vectors, flash off):', head, ...lines].join('\n'));
});

/** The file with `<arch>.pooling_type` set, written beside it once. */
function withPooling(path: string, arch: string, value: number): string {
  const out = path.replace(/\.gguf$/, `.pooling${value}.gguf`);
  if (existsSync(out)) return out;
  writeFileSync(`${out}.${process.pid}.partial`, withMetadata(readFileSync(path), [{ key: `${arch}.pooling_type`, type: 'u32', value }]));
  renameSync(`${out}.${process.pid}.partial`, out);
  return out;
}

async function fileFor(spec: ModelSpec, type: (typeof TYPES)[number]): Promise<string> {
  const f32 = await makeTestModel(spec);
  return type === 'F32' || type === 'F32 kv32' ? f32 : llamaQuantize(f32, type as LlamaFileType);
}

const maxAbs = (v: ArrayLike<number>) => Array.from(v).reduce((m, x) => Math.max(m, Math.abs(x)), 0);
const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).reduce((m, x, i) => Math.max(m, Math.abs(x - b[i]!)), 0);
function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let [ab, aa, bb] = [0, 0, 0];
  for (let i = 0; i < a.length; i++) [ab, aa, bb] = [ab + a[i]! * b[i]!, aa + a[i]! ** 2, bb + b[i]! ** 2];
  return ab / Math.sqrt(aa * bb);
}

describe.skipIf(!SDK_READY)(`embeddings vs llama.cpp${SDK_READY ? '' : ` (skipped: ${SDK_MISSING_REASON})`}`, () => {
  const cases = Object.entries(ARCHITECTURES).flatMap(([arch, spec]) => TYPES.map((type) => ({ arch, spec, type })));
  it.each(cases)('$arch $type: every pooling', async ({ arch, spec, type }) => {
    const base = await fileFor(spec, type);
    const exact = type === 'F32' || type === 'F32 kv32' || type === 'F16';
    const kvType = type === 'F32 kv32' ? 'f32' : 'f16';
    const rows: Row[] = [];
    let spread = 0;
    const files = [['none → mean', base], ...Object.entries(POOLING_TYPE).map(([pooling, value]) => [pooling, withPooling(base, arch, value)])];
    // Our default (normalised) on the chat-model file, against llama.cpp's mean divided by its norm.
    const normalized: { ours: Float32Array; theirs: Float32Array }[] = [];
    for (const [pooling, path] of files) {
      const keyed = pooling !== 'none → mean';
      const model = await (await importSdk()).loadModel(path, { kvType });
      const plain = await openLlamaCppEmbedder(path, { kvType });
      // llama.cpp's spread, for the quantized bounds (measured with its default cache).
      const flash = keyed && kvType === 'f16' ? await openLlamaCppEmbedder(path, { flashAttention: true }) : undefined;
      try {
        expect(model.info.pooling).toBe(keyed ? pooling : 'mean');
        const ours = await model.embed(TEXTS, { normalize: false });
        const oursNormalized = keyed ? undefined : await model.embed(TEXTS);
        expect(ours.inputTokens[2]).toBeGreaterThan(32);
        const row: Row = { arch, type, pooling, maxDelta: 0, minCosine: 1, bound: 0 };
        for (const [i, text] of TEXTS.entries()) {
          // The same tokens: special tokens as llama.cpp's embedding context adds them.
          const ids = plain.inputTokens(text);
          expect(model.tokenize(text)).toEqual(ids);
          const theirs = keyed ? await plain.embed(text) : await plain.meanOfTokenStates(ids);
          row.maxDelta = Math.max(row.maxDelta, maxAbsDiff(ours.vectors[i]!, theirs));
          row.minCosine = Math.min(row.minCosine, cosine(ours.vectors[i]!, theirs));
          row.scale = Math.max(row.scale ?? 0, maxAbs(theirs));
          if (oursNormalized) normalized.push({ ours: oursNormalized.vectors[i]!, theirs });
          if (!flash) continue;
          row.flashSpread = Math.max(row.flashSpread ?? 0, maxAbsDiff(await flash.embed(text), theirs));
          // The first token's state is the same with flash attention on or off (it attends to itself alone), but
          // llama.cpp computes it with another matmul kernel in a batch than alone: that spread counts too.
          if (pooling === 'cls') spread = Math.max(spread, maxAbsDiff(await plain.embed(ids.slice(0, 1)), theirs));
        }
        spread = Math.max(spread, row.flashSpread ?? 0);
        rows.push(row);
      } finally {
        model.dispose();
        await plain.dispose();
        await flash?.dispose();
      }
    }
    for (const row of rows) {
      if (kvType === 'f16') row.spread = spread;
      row.bound = exact ? RELATIVE_BOUND[type as keyof typeof RELATIVE_BOUND] * row.scale! : BOUND_VS_SPREAD * spread;
      table.push(row);
    }
    for (const row of rows) {
      expect(row.maxDelta, `${row.pooling} pooling`).toBeLessThanOrEqual(row.bound);
      expect(row.minCosine, `${row.pooling} pooling`).toBeGreaterThanOrEqual(exact ? MIN_COSINE.exact : MIN_COSINE.quantized);
    }
    // Unit length as llama-server gives it: the same bound, scaled as the vectors were.
    const mean = rows[0]!;
    for (const { ours, theirs } of normalized) {
      const length = Math.hypot(...theirs);
      expect(maxAbsDiff(ours, theirs.map((x) => x / length)), 'normalised mean').toBeLessThanOrEqual((2 * mean.bound) / length);
    }
  });
});
