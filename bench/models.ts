/**
 * The benchmark models: a ~28M-parameter random llama at Q8_0 and Q4_0, built with the test fixture
 * generator and cached under bench/.cache/ (the fixture's own cache is for the test suite).
 */
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseGGUF } from '../sdk/src/gguf/parse.js';
import { buildModelGGUF, specName, type ModelSpec } from '../test/fixtures/models.js';

/** Largest vocabulary the fixture's llama tokenizer trainer reaches on its sample text. */
const LLAMA_VOCAB_MAX = 2840;
const CACHE_DIR = fileURLToPath(new URL('./.cache/', import.meta.url));

const BASE = { dim: 512, layers: 8, heads: 8, kvHeads: 8, ffn: 1376, vocab: 'llama', vocabSize: LLAMA_VOCAB_MAX, ctx: 512, seed: 30 } as const;

export const BENCH_MODELS: Record<string, ModelSpec> = {
  'llama30m-q8_0': { ...BASE, type: 'Q8_0' },
  'llama30m-q4_0': { ...BASE, type: 'Q4_0' },
};

/** Path of the cached GGUF for `spec`, building it on first use. */
export function benchModelPath(spec: ModelSpec): string {
  const path = `${CACHE_DIR}${specName(spec)}-no-eos.gguf`;
  if (existsSync(path)) return path;
  mkdirSync(CACHE_DIR, { recursive: true });
  const bytes = buildModelGGUF(spec);
  silenceEos(bytes);
  const partial = `${path}.${process.pid}.partial`;
  writeFileSync(partial, bytes);
  renameSync(partial, path);
  return path;
}

/**
 * Zeroes EOS's row of output.weight (all-zero bytes are a zero scale in F16, Q8_0 and Q4_0 blocks), so
 * its logit is exactly 0 while thousands of others spread over a few units: greedy decoding never picks it.
 * The SDK stops at EOS, and every engine must generate the same 128 tokens from a random model.
 */
function silenceEos(bytes: Uint8Array): void {
  const header = parseGGUF(bytes);
  const eos = header.metadata['tokenizer.ggml.eos_token_id'];
  const output = header.tensors.find((t) => t.name === 'output.weight');
  if (typeof eos !== 'number' || !output) throw new Error('bench model: expected an EOS id and an untied output.weight');
  const rowBytes = output.byteSize / output.dims[1];
  const start = header.dataOffset + output.offset + eos * rowBytes;
  bytes.fill(0, start, start + rowBytes);
}
