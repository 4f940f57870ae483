/**
 * The benchmark's models: random weights in the shapes of real models (bench/forward/shapes.mjs), one GGUF
 * per shape × file type, built on first use and cached in bench/.cache/ (gitignored; never committed).
 * Each has a random recycle head of matching shape for the cost rows.
 *
 *  - Weights ~ N(0, 1/fan_in) (activations stay near unit size); the tied embedding ~ N(0, (3/√dim)²), so
 *    that logits spread over a few units and the greedy choice is clear.
 *  - Vocabulary: the fixtures' byte-level BPE (GPT-2 style, as SmolLM2's and Qwen3's) trained on their
 *    sample text to 2048 tokens, padded with `[PAD<i>]` tokens of type UNUSED to the shape's vocabulary,
 *    as llama.cpp's converter pads Qwen's 151669 tokens to 151936. Matrix sizes are the real ones; only
 *    the first 2048 ids ever come out of the tokenizer (the prompts are token ids anyway).
 *  - EOS's row of token_embd is zero (all-zero bytes are a zero scale in every type), so its logit is
 *    exactly 0 while others spread over a few units: no engine's greedy decoding stops early (the SDK
 *    stops at EOS, and every engine must generate the same number of tokens).
 */
import { closeSync, existsSync, mkdirSync, openSync, readSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { fnv1a64 } from '../sdk/src/recycle.js';
import { readGGUFHeader } from '../sdk/src/gguf/load.js';
import '../sdk/src/node.js'; // the SDK's Node entry: model files by path
import type { GGUFKV } from '../test/fixtures/gguf-writer.js';
import { Prng } from '../test/fixtures/prng.js';
import { FILE_TYPE, tensorTypeFor, type MixModel } from '../test/fixtures/llama-quant.js';
import { GGML_TYPE, type GGMLTypeName } from '../test/fixtures/quantize.js';
import { recycleHeadMetadata } from '../test/fixtures/recycle-head.js';
import { buildVocab, TOKEN_TYPE } from '../test/fixtures/vocab.js';
import { SHAPES, type Shape, type ShapeName } from './forward/shapes.mjs';
import { writeGGUFStream, type StreamedTensor } from './gguf-stream.js';

/** Bump when the generator changes, so that stale cached files are rebuilt. */
const GENERATOR_VERSION = 1;
const CACHE_DIR = fileURLToPath(new URL('./.cache/', import.meta.url));
const TRAINED_VOCAB = 2048;

/** What a tensor is, for a file type's per-tensor choice (llama.cpp's quantizer decides by name and shape). */
export interface TensorRole {
  name: string;
  /** ne0 first. */
  dims: number[];
}

/**
 * File types: llama.cpp's `general.file_type` id and the ggml type each tensor gets (norms stay F32).
 * Q8_0 and Q4_0 are "pure" (every matrix in that type, as `llama-quantize --pure` makes them), so that
 * each measures one kernel. Q4_K_M is llama.cpp's own mix, from the fixtures' copy of its rules
 * (`test/fixtures/llama-quant.ts`): at the SmolLM2 shape most matrices have 576-wide rows, not a multiple
 * of 256, and fall back to Q5_0 / Q8_0 as in the real SmolLM2-135M Q4_K_M files; the Qwen3 shape's rows
 * all fit, so it is Q4_K with Q6_K for the output and some attn_v / ffn_down.
 */
export const FILE_TYPES = {
  Q8_0: { id: FILE_TYPE.Q8_0, label: 'Q8_0 (pure)', typeFor: (): GGMLTypeName => 'Q8_0' },
  Q4_0: { id: FILE_TYPE.Q4_0, label: 'Q4_0 (pure)', typeFor: (): GGMLTypeName => 'Q4_0' },
  Q4_K_M: { id: FILE_TYPE.Q4_K_M, label: "Q4_K_M (llama.cpp's mix)", typeFor: (t: TensorRole, shape: Shape, layers: number) => tensorTypeFor('Q4_K_M', t, mixModel(shape, layers)) },
} satisfies Record<string, { id: number; label: string; typeFor(tensor: TensorRole, shape: Shape, layers: number): GGMLTypeName }>;

/** What llama.cpp's rules read of a model (the bench's files are llama-architecture). */
function mixModel(shape: Shape, layers: number): MixModel {
  return { arch: 'llama', layers, heads: shape.heads, kvHeads: shape.kvHeads, tiedEmbeddings: shape.tied };
}
export type FileTypeName = keyof typeof FILE_TYPES;

export interface BenchModel {
  shape: ShapeName;
  fileType: FileTypeName;
}

/** Models `npm run bench` measures, in order; `--models` picks some. */
export const BENCH_MODELS: BenchModel[] = [
  { shape: 'smollm2-135m', fileType: 'Q8_0' },
  { shape: 'smollm2-135m', fileType: 'Q4_0' },
  { shape: 'smollm2-135m', fileType: 'Q4_K_M' },
  { shape: 'qwen3-0.6b', fileType: 'Q8_0' },
  { shape: 'qwen3-0.6b', fileType: 'Q4_0' },
  { shape: 'qwen3-0.6b', fileType: 'Q4_K_M' },
];

export const modelName = (m: BenchModel) => `${m.shape}-${m.fileType.toLowerCase()}`;

/** Path of the cached GGUF of `model`, building it on first use. */
export function benchModelPath(model: BenchModel, log: (line: string) => void = () => {}): string {
  const path = `${CACHE_DIR}${modelName(model)}-g${GENERATOR_VERSION}.gguf`;
  if (!existsSync(path)) {
    mkdirSync(CACHE_DIR, { recursive: true });
    log(`  building ${path} (random weights, once) …`);
    writeGGUFStream(path, baseMetadata(model), baseTensors(model));
  }
  return path;
}

/** Path of a random recycle head for `model` (one layer of the base's shape), building it on first use. */
export async function benchHeadPath(model: BenchModel, log: (line: string) => void = () => {}): Promise<string> {
  const base = benchModelPath(model, log);
  const path = base.replace(/\.gguf$/, '-recycle.gguf');
  if (!existsSync(path)) {
    log(`  building ${path} …`);
    writeGGUFStream(path, headMetadata(model, await embeddingHash(base)), headTensors(model));
  }
  return path;
}

function u32(key: string, value: number): GGUFKV {
  return { key, type: 'u32', value };
}

function f32(key: string, value: number): GGUFKV {
  return { key, type: 'f32', value };
}

/** A matrix of Gaussian values, generated row block by row block from its own seed (deterministic, any order). */
function gaussian(name: string, cols: number, rows: number, std: number, type: number, seed: number, zeroRow = -1): StreamedTensor {
  const rng = new Prng(seed);
  return {
    name,
    dims: [cols, rows],
    type,
    rows(from, count) {
      const values = rng.gaussianArray(count * cols, std);
      if (zeroRow >= from && zeroRow < from + count) values.fill(0, (zeroRow - from) * cols, (zeroRow - from + 1) * cols);
      return values;
    },
  };
}

function norm(name: string, dim: number, seed: number): StreamedTensor {
  const rng = new Prng(seed);
  return { name, dims: [dim], type: GGML_TYPE.F32, rows: () => rng.gaussianArray(dim, 0.1, 1) };
}

/** One decoder layer's tensors under `prefix` (`blk.N.` or `recycle.blk.N.`). */
function layerTensors(shape: Shape, prefix: string, typeFor: (t: TensorRole) => number, seed: number): StreamedTensor[] {
  const q = shape.heads * shape.headDim;
  const kv = shape.kvHeads * shape.headDim;
  const matrix = (name: string, cols: number, rows: number, k: number) =>
    gaussian(prefix + name, cols, rows, 1 / Math.sqrt(cols), typeFor({ name: prefix + name, dims: [cols, rows] }), seed + k);
  return [
    norm(`${prefix}attn_norm.weight`, shape.dim, seed),
    matrix('attn_q.weight', shape.dim, q, 1),
    matrix('attn_k.weight', shape.dim, kv, 2),
    matrix('attn_v.weight', shape.dim, kv, 3),
    matrix('attn_output.weight', q, shape.dim, 4),
    norm(`${prefix}ffn_norm.weight`, shape.dim, seed + 5),
    matrix('ffn_gate.weight', shape.dim, shape.ffn, 6),
    matrix('ffn_up.weight', shape.dim, shape.ffn, 7),
    matrix('ffn_down.weight', shape.ffn, shape.dim, 8),
  ];
}

/** The ggml type id of each tensor of `model`'s base (`layers` = the shape's) or of its one-layer head. */
function typeIdFor(model: BenchModel, layers = SHAPES[model.shape].layers): (t: TensorRole) => number {
  // llama.cpp's rules know tensors by their base name (blk.N.…); a head's are the same under `recycle.`.
  return (t) => GGML_TYPE[FILE_TYPES[model.fileType].typeFor({ ...t, name: t.name.replace(/^recycle\./, '') }, SHAPES[model.shape], layers)];
}

function eosId(): number {
  return buildVocab('gpt2', TRAINED_VOCAB).eosId;
}

export function baseTensors(model: BenchModel): StreamedTensor[] {
  const shape = SHAPES[model.shape];
  const typeFor = typeIdFor(model);
  const embdStd = shape.tied ? 3 / Math.sqrt(shape.dim) : 1;
  const tensors = [gaussian('token_embd.weight', shape.dim, shape.vocab, embdStd, typeFor({ name: 'token_embd.weight', dims: [shape.dim, shape.vocab] }), 1, shape.tied ? eosId() : -1)];
  for (let l = 0; l < shape.layers; l++) tensors.push(...layerTensors(shape, `blk.${l}.`, typeFor, 100 * (l + 1)));
  tensors.push(norm('output_norm.weight', shape.dim, 2));
  if (!shape.tied) {
    tensors.push(gaussian('output.weight', shape.dim, shape.vocab, 3 / Math.sqrt(shape.dim), typeFor({ name: 'output.weight', dims: [shape.dim, shape.vocab] }), 3, eosId()));
  }
  return tensors;
}

/** The vocabulary padded to the shape's size, as GGUF metadata. */
function vocabMetadata(size: number): GGUFKV[] {
  const vocab = buildVocab('gpt2', TRAINED_VOCAB);
  const tokens = [...vocab.tokens];
  const types = Array.from(vocab.tokenTypes);
  for (let i = tokens.length; i < size; i++) {
    tokens.push(`[PAD${i}]`);
    types.push(TOKEN_TYPE.UNUSED);
  }
  const replaced: Record<string, GGUFKV> = {
    'tokenizer.ggml.tokens': { key: 'tokenizer.ggml.tokens', type: 'array', itemType: 'string', value: tokens },
    'tokenizer.ggml.token_type': { key: 'tokenizer.ggml.token_type', type: 'array', itemType: 'i32', value: types },
  };
  return vocab.metadata.map((kv) => replaced[kv.key] ?? kv);
}

function baseMetadata(model: BenchModel): GGUFKV[] {
  const shape = SHAPES[model.shape];
  return [
    { key: 'general.architecture', type: 'string', value: 'llama' },
    { key: 'general.name', type: 'string', value: `bench ${shape.label}, ${FILE_TYPES[model.fileType].label}, random weights` },
    u32('general.file_type', FILE_TYPES[model.fileType].id),
    u32('llama.context_length', shape.trainedContext),
    u32('llama.embedding_length', shape.dim),
    u32('llama.block_count', shape.layers),
    u32('llama.feed_forward_length', shape.ffn),
    u32('llama.attention.head_count', shape.heads),
    u32('llama.attention.head_count_kv', shape.kvHeads),
    u32('llama.attention.key_length', shape.headDim),
    u32('llama.attention.value_length', shape.headDim),
    u32('llama.rope.dimension_count', shape.headDim),
    f32('llama.rope.freq_base', shape.ropeFreqBase),
    f32('llama.attention.layer_norm_rms_epsilon', shape.rmsEps),
    u32('llama.vocab_size', shape.vocab),
    ...vocabMetadata(shape.vocab),
  ];
}

/** One layer of the base's shape between the projection and the final norm (training/README.md's head). */
export function headTensors(model: BenchModel): StreamedTensor[] {
  const shape = SHAPES[model.shape];
  const typeFor = typeIdFor(model, 1);
  const proj = 'recycle.proj.weight';
  return [
    gaussian(proj, 2 * shape.dim, shape.dim, 1 / Math.sqrt(2 * shape.dim), typeFor({ name: proj, dims: [2 * shape.dim, shape.dim] }), 7),
    ...layerTensors(shape, 'recycle.blk.0.', typeFor, 9000),
    norm('recycle.output_norm.weight', shape.dim, 8),
  ];
}

function headMetadata(model: BenchModel, baseHash: string): GGUFKV[] {
  const shape = SHAPES[model.shape];
  return recycleHeadMetadata({
    name: `random head for ${modelName(model)}`,
    contextLength: shape.trainedContext,
    dim: shape.dim,
    layers: 1,
    ffn: shape.ffn,
    heads: shape.heads,
    kvHeads: shape.kvHeads,
    headDim: shape.headDim,
    ropeFreqBase: shape.ropeFreqBase,
    rmsEps: shape.rmsEps,
    baseName: String(baseMetadata(model).find((kv) => kv.key === 'general.name')!.value),
    baseVocab: shape.vocab,
    baseHashes: [baseHash],
  });
}

/** The SDK's hash of the base's token_embd bytes, read back from the file (a head names the base it fits). */
async function embeddingHash(path: string): Promise<string> {
  const header = await readGGUFHeader(path);
  const embd = header.tensors.find((t) => t.name === 'token_embd.weight')!;
  const bytes = new Uint8Array(embd.byteSize);
  const fd = openSync(path, 'r');
  try {
    readSync(fd, bytes, 0, bytes.length, header.dataOffset + embd.offset);
  } finally {
    closeSync(fd);
  }
  return fnv1a64(bytes);
}
