/**
 * Random-weight base GGUFs of every architecture for training/base-parity.test.ts, laid out as
 * convert_hf_to_gguf.py writes them (tensor names, shapes, the keys each model class adds), in F32, then
 * quantized by llama.cpp's own llama_model_quantize (test/oracle/llama-quantize.ts: its per-tensor mixes included).
 * Interim: test/fixtures/models.ts replaces this file once it knows the architectures; the spec fields are its.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { writeGGUF, type GGUFKV, type GGUFTensorInput } from '../test/fixtures/gguf-writer.js';
import { Prng } from '../test/fixtures/prng.js';
import { buildVocab } from '../test/fixtures/vocab.js';
import { llamaQuantize, type LlamaFileType } from '../test/oracle/llama-quantize.js';

export type Architecture = 'llama' | 'qwen2' | 'qwen3' | 'gemma3';

export interface BaseSpec {
  arch: Architecture;
  dim: number;
  layers: number;
  heads: number;
  kvHeads: number;
  /** Written as attention.key_length / value_length when given (qwen3 and gemma3 always). */
  headDim?: number;
  ffn: number;
  vocab: 'llama' | 'gpt2';
  tiedOutput?: boolean;
  ctx: number;
  seed: number;
  ropeFreqBase?: number;
  /** Llama 3.1+: rope_freqs.weight as convert_hf_to_gguf computes it for rope_type "llama3" (factor 8). */
  ropeFreqs?: boolean;
  ropeScaling?: { type: 'linear'; factor: number } | { type: 'yarn'; factor: number; originalContext: number };
  /** gemma3: attention.sliding_window (llama.cpp's default pattern: five window layers, then a global one). */
  slidingWindow?: { size: number; ropeFreqBase: number };
}

export type FileType = LlamaFileType | 'F32';

const SHAPE = { layers: 2, ffn: 768, ctx: 256, seed: 31 } as const;
/** Each architecture in the options real files use, at dims K-quants take (256) and SmolLM2's 576. */
export const BASE_SPECS = {
  llama: { ...SHAPE, arch: 'llama', dim: 256, heads: 4, kvHeads: 2, vocab: 'llama' },
  llama32: { ...SHAPE, arch: 'llama', dim: 256, heads: 4, kvHeads: 2, headDim: 64, vocab: 'gpt2', ropeFreqs: true, ropeFreqBase: 500000 },
  llamaLinear: { ...SHAPE, arch: 'llama', dim: 256, heads: 4, kvHeads: 4, vocab: 'llama', ropeScaling: { type: 'linear', factor: 4 } },
  llamaYarn: { ...SHAPE, arch: 'llama', dim: 256, heads: 4, kvHeads: 2, vocab: 'gpt2', ropeScaling: { type: 'yarn', factor: 4, originalContext: 16 } },
  smollm: { ...SHAPE, arch: 'llama', dim: 576, heads: 9, kvHeads: 3, ffn: 1536, vocab: 'gpt2', tiedOutput: true, ropeFreqBase: 100000 },
  qwen2: { ...SHAPE, arch: 'qwen2', dim: 256, heads: 4, kvHeads: 2, vocab: 'gpt2', tiedOutput: true, ropeFreqBase: 1e6 },
  qwen3: { ...SHAPE, arch: 'qwen3', dim: 256, heads: 4, kvHeads: 2, headDim: 128, vocab: 'gpt2', tiedOutput: true, ropeFreqBase: 1e6 },
  gemma3: { ...SHAPE, arch: 'gemma3', layers: 6, dim: 256, heads: 4, kvHeads: 1, headDim: 128, vocab: 'llama', tiedOutput: true, slidingWindow: { size: 8, ropeFreqBase: 10000 } },
  gemma3Linear: { ...SHAPE, arch: 'gemma3', layers: 6, dim: 256, heads: 4, kvHeads: 2, headDim: 64, vocab: 'llama', tiedOutput: true, slidingWindow: { size: 8, ropeFreqBase: 10000 }, ropeScaling: { type: 'linear', factor: 8 } },
} as const satisfies Record<string, BaseSpec>;

const GENERATOR_VERSION = 1;
const CACHE_DIR = fileURLToPath(new URL('../test/.cache/', import.meta.url));
const F32 = 0;

export function headDimOf(spec: BaseSpec): number {
  return spec.headDim ?? spec.dim / spec.heads;
}

function specName(spec: BaseSpec): string {
  const hash = createHash('sha256').update(JSON.stringify({ GENERATOR_VERSION, ...spec })).digest('hex').slice(0, 12);
  return `base-${spec.arch}-d${spec.dim}-l${spec.layers}-${hash}`;
}

/** Path of the spec's GGUF in `fileType`, built (and quantized) on first use, cached under test/.cache/. */
export function makeBase(spec: BaseSpec, fileType: FileType): string {
  mkdirSync(CACHE_DIR, { recursive: true });
  const path = `${CACHE_DIR}${specName(spec)}.gguf`;
  if (!existsSync(path)) {
    // Parallel test workers may build the same file: write aside, then rename.
    const partial = `${path}.${process.pid}.partial`;
    writeFileSync(partial, buildBase(spec));
    renameSync(partial, path);
  }
  return fileType === 'F32' ? path : llamaQuantize(path, fileType);
}

/**
 * Scales keep activations near unit size: projections ~ N(0, 1/fan_in), embeddings ~ N(0, 1) (÷√dim where
 * the architecture multiplies them by √dim), output ~ N(0, (3/√dim)²), norms near 1, biases ~ N(0, 0.5²).
 */
function buildBase(s: BaseSpec): Uint8Array {
  const vocab = buildVocab(s.vocab);
  const vocabSize = vocab.tokens.length;
  const rng = new Prng(s.seed);
  const hd = headDimOf(s);
  const gemma = s.arch === 'gemma3';
  const matrix = (name: string, cols: number, rows: number, std: number): GGUFTensorInput => ({ name, dims: [cols, rows], type: F32, data: rng.gaussianArray(cols * rows, std) });
  const vector = (name: string, length: number, std: number, mean: number): GGUFTensorInput => ({ name, dims: [length], type: F32, data: rng.gaussianArray(length, std, mean) });
  const norm = (name: string, length = s.dim) => vector(name, length, 0.1, 1);
  const ropeBase = s.ropeFreqBase ?? (gemma ? 1e6 : 10000);

  const tensors: GGUFTensorInput[] = [];
  if (s.ropeFreqs) tensors.push({ name: 'rope_freqs.weight', dims: [hd / 2], type: F32, data: llama3RopeFactors(ropeBase, hd) });
  tensors.push(matrix('token_embd.weight', s.dim, vocabSize, gemma ? 1 / Math.sqrt(s.dim) : 1));
  for (let l = 0; l < s.layers; l++) {
    const b = `blk.${l}`;
    tensors.push(
      norm(`${b}.attn_norm.weight`),
      matrix(`${b}.attn_q.weight`, s.dim, s.heads * hd, 1 / Math.sqrt(s.dim)),
      matrix(`${b}.attn_k.weight`, s.dim, s.kvHeads * hd, 1 / Math.sqrt(s.dim)),
      matrix(`${b}.attn_v.weight`, s.dim, s.kvHeads * hd, 1 / Math.sqrt(s.dim)),
    );
    if (s.arch === 'qwen2') {
      tensors.push(vector(`${b}.attn_q.bias`, s.heads * hd, 0.5, 0), vector(`${b}.attn_k.bias`, s.kvHeads * hd, 0.5, 0), vector(`${b}.attn_v.bias`, s.kvHeads * hd, 0.5, 0));
    }
    if (s.arch === 'qwen3' || gemma) tensors.push(norm(`${b}.attn_q_norm.weight`, hd), norm(`${b}.attn_k_norm.weight`, hd));
    tensors.push(matrix(`${b}.attn_output.weight`, s.heads * hd, s.dim, 1 / Math.sqrt(s.heads * hd)));
    if (gemma) tensors.push(norm(`${b}.post_attention_norm.weight`));
    tensors.push(
      norm(`${b}.ffn_norm.weight`),
      matrix(`${b}.ffn_gate.weight`, s.dim, s.ffn, 1 / Math.sqrt(s.dim)),
      matrix(`${b}.ffn_up.weight`, s.dim, s.ffn, 1 / Math.sqrt(s.dim)),
      matrix(`${b}.ffn_down.weight`, s.ffn, s.dim, 1 / Math.sqrt(s.ffn)),
    );
    if (gemma) tensors.push(norm(`${b}.post_ffw_norm.weight`));
  }
  tensors.push(norm('output_norm.weight'));
  if (!s.tiedOutput) tensors.push(matrix('output.weight', s.dim, vocabSize, 3 / Math.sqrt(s.dim)));

  const a = s.arch;
  const u32 = (key: string, value: number): GGUFKV => ({ key: `${a}.${key}`, type: 'u32', value });
  const f32 = (key: string, value: number): GGUFKV => ({ key: `${a}.${key}`, type: 'f32', value });
  const metadata: GGUFKV[] = [
    { key: 'general.architecture', type: 'string', value: a },
    { key: 'general.name', type: 'string', value: specName(s) },
    { key: 'general.file_type', type: 'u32', value: 0 }, // LLAMA_FTYPE_ALL_F32
    u32('block_count', s.layers),
    u32('context_length', s.ctx),
    u32('embedding_length', s.dim),
    u32('feed_forward_length', s.ffn),
    u32('attention.head_count', s.heads),
    u32('attention.head_count_kv', s.kvHeads),
    f32('rope.freq_base', ropeBase),
    f32('attention.layer_norm_rms_epsilon', a === 'llama' ? 1e-5 : 1e-6),
  ];
  const scaling = s.ropeScaling;
  if (scaling) metadata.push({ key: `${a}.rope.scaling.type`, type: 'string', value: scaling.type }, f32('rope.scaling.factor', scaling.factor));
  if (scaling?.type === 'yarn') metadata.push(u32('rope.scaling.original_context_length', scaling.originalContext));
  // HF configs with a head_dim (Qwen3, Gemma 3, Llama 3.2) get key and value lengths.
  if (s.headDim !== undefined || a === 'qwen3' || gemma) metadata.push(u32('attention.key_length', hd), u32('attention.value_length', hd));
  if (a === 'llama') metadata.push(u32('vocab_size', vocabSize), u32('rope.dimension_count', hd));
  if (s.slidingWindow) metadata.push(u32('attention.sliding_window', s.slidingWindow.size), f32('rope.freq_base_swa', s.slidingWindow.ropeFreqBase));
  return writeGGUF({ metadata: [...metadata, ...vocab.metadata], tensors });
}

/** Llama 3's RoPE frequency factors as convert_hf_to_gguf computes them (factor 8, low 1, high 4, original context 8192). */
function llama3RopeFactors(base: number, dim: number): Float32Array {
  const [factor, low, high, original] = [8, 1, 4, 8192];
  return Float32Array.from({ length: dim / 2 }, (_, i) => {
    const wavelen = (2 * Math.PI) / (1 / base ** ((2 * i) / dim));
    if (wavelen < original / high) return 1;
    if (wavelen > original / low) return factor;
    const smooth = (original / wavelen - low) / (high - low);
    return 1 / ((1 - smooth) / factor + smooth);
  });
}
