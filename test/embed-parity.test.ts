/**
 * model.embed() against llama.cpp's embeddings (node-llama-cpp's embedding context, one thread, flash attention
 * off: the path the engine mirrors) on the same files: llama, qwen3 and gemma3 fixtures, each with the GGUF's
 * `<arch>.pooling_type` set to mean, cls and last (llama.cpp pools as the key says; it does not normalise, so the
 * raw vectors are compared, normalize: false), in F32 and in llama.cpp's own F16, Q8_0 and Q4_K_M files.
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
/** Largest |Δ| / largest |component| at F32 and F16. */
const RELATIVE_BOUND = { F32: 1e-3, F16: 2e-3 } as const;
/**
 * Quantized files: the engine takes llama.cpp's plain path; what is left is summation order, which llama.cpp's own
 * kernels also change (flash attention; its batched matmuls against its one-row dot products).
 */
const BOUND_VS_SPREAD = 3;

const BASE = { layers: 2, ffn: 768, ctx: 256, seed: 31, type: 'F32' } as const;
const ARCHITECTURES: Record<string, ModelSpec> = {
  llama: { ...BASE, arch: 'llama', dim: 256, heads: 4, kvHeads: 2, vocab: 'llama' },
  qwen3: { ...BASE, arch: 'qwen3', dim: 256, heads: 4, kvHeads: 2, headDim: 128, vocab: 'gpt2', tiedOutput: true, ropeFreqBase: 1e6 },
  gemma3: { ...BASE, arch: 'gemma3', layers: 6, dim: 256, heads: 4, kvHeads: 1, headDim: 128, vocab: 'llama', tiedOutput: true, slidingWindow: { size: 8, ropeFreqBase: 10000 } },
};
const TYPES = ['F32', 'F16', 'Q8_0', 'Q4_K_M'] as const;
/** llama.cpp's enum llama_pooling_type. */
const POOLING_TYPE = { mean: 1, cls: 2, last: 3 } as const;

interface Row {
  arch: string;
  type: string;
  pooling: string;
  maxDelta: number;
  minCosine: number;
  /** llama.cpp's flash on vs off on this pooling's vectors. */
  flashSpread: number;
  /** llama.cpp's own spread on this file: flash on/off over every pooling, batched vs alone for the first token. */
  spread?: number;
  /** Largest |component| of llama.cpp's vectors. */
  scale?: number;
  bound: number;
}
const table: Row[] = [];

afterAll(() => {
  if (table.length === 0) return;
  const head = `${'arch'.padEnd(7)} ${'type'.padEnd(7)} ${'pooling'.padEnd(8)} ${'max|Δ|'.padEnd(10)} ${'min cosine'.padEnd(12)} ${'max|v|'.padEnd(8)} ${'flash on/off'.padEnd(13)} ${'file spread'.padEnd(12)} bound`;
  const e = (x: number | undefined) => (x ?? 0).toExponential(2);
  const lines = table.map((r) =>
    [r.arch.padEnd(7), r.type.padEnd(7), r.pooling.padEnd(8), e(r.maxDelta).padEnd(10), r.minCosine.toFixed(9).padEnd(12), (r.scale ?? 0).toFixed(2).padEnd(8), e(r.flashSpread).padEnd(13), e(r.spread).padEnd(12), e(r.bound)].join(' '),
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
  return type === 'F32' ? f32 : llamaQuantize(f32, type as LlamaFileType);
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
    const rows: Row[] = [];
    let spread = 0;
    for (const [pooling, value] of Object.entries(POOLING_TYPE)) {
      const path = withPooling(base, arch, value);
      const model = await (await importSdk()).loadModel(path);
      const plain = await openLlamaCppEmbedder(path);
      const flash = await openLlamaCppEmbedder(path, { flashAttention: true });
      try {
        expect(model.info.pooling).toBe(pooling);
        const ours = await model.embed(TEXTS, { normalize: false });
        expect(ours.inputTokens[2]).toBeGreaterThan(32);
        const row: Row = { arch, type, pooling, maxDelta: 0, minCosine: 1, flashSpread: 0, bound: 0 };
        for (const [i, text] of TEXTS.entries()) {
          // The same tokens: special tokens as llama.cpp's embedding context adds them.
          const ids = plain.inputTokens(text);
          expect(model.tokenize(text)).toEqual(ids);
          const theirs = await plain.embed(text);
          row.maxDelta = Math.max(row.maxDelta, maxAbsDiff(ours.vectors[i]!, theirs));
          row.minCosine = Math.min(row.minCosine, cosine(ours.vectors[i]!, theirs));
          row.flashSpread = Math.max(row.flashSpread, maxAbsDiff(await flash.embed(text), theirs));
          row.scale = Math.max(row.scale ?? 0, maxAbs(theirs));
          // The first token's state is the same with flash attention on or off (it attends to itself alone), but
          // llama.cpp computes it with another matmul kernel in a batch than alone: that spread counts too.
          if (pooling === 'cls') spread = Math.max(spread, maxAbsDiff(await plain.embed(ids.slice(0, 1)), theirs));
        }
        spread = Math.max(spread, row.flashSpread);
        rows.push(row);
      } finally {
        model.dispose();
        await plain.dispose();
        await flash.dispose();
      }
    }
    for (const row of rows) {
      row.spread = spread;
      row.bound = type === 'F32' || type === 'F16' ? RELATIVE_BOUND[type] * row.scale! : BOUND_VS_SPREAD * spread;
      table.push(row);
    }
    for (const row of rows) expect(row.maxDelta, `${row.pooling} pooling`).toBeLessThanOrEqual(row.bound);
  });
});
