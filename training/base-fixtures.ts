/**
 * The bases the trainer's tests run: random-weight GGUFs of every architecture in the options real files use
 * (test/fixtures/models.ts lays them out as convert_hf_to_gguf.py does), in F32 or quantized by llama.cpp's own
 * llama_model_quantize (test/oracle/llama-quantize.ts: its per-tensor mixes included). Cached under test/.cache/.
 */
import { makeTestModel, type ModelSpec } from '../test/fixtures/models.js';
import { llamaQuantize, type LlamaFileType } from '../test/oracle/llama-quantize.js';

export type FileType = LlamaFileType | 'F32';

const SHAPE = { layers: 2, ffn: 768, ctx: 256, seed: 31, type: 'F32' } as const;
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
} as const satisfies Record<string, ModelSpec>;

/** Path of the F32 spec's GGUF in `fileType`, built (and quantized) on first use. */
export async function makeBase(spec: ModelSpec, fileType: FileType): Promise<string> {
  const path = await makeTestModel(spec);
  return fileType === 'F32' ? path : llamaQuantize(path, fileType);
}
