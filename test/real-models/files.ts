/**
 * The files of issue #10's table as the tests build them: each real model's F16 file (test/fixtures/real-models.ts)
 * and, from it, llama.cpp's own quantizer's output for every other type, all cached under test/.cache/.
 */
import { makeTestModel } from '../fixtures/models.js';
import { REAL_MODELS, type RealModelName } from '../fixtures/real-models.js';
import { llamaQuantize, type LlamaFileType } from '../oracle/llama-quantize.js';

export type FileType = LlamaFileType;

/**
 * The types each model is run in: F16 (as converted), Q4_K_M for all (what most people download), the rest of
 * llama.cpp's common types spread over them (the larger SmolLM2 in fewer).
 */
export const TYPES: Record<RealModelName, FileType[]> = {
  'qwen2.5-0.5b-instruct': ['F16', 'Q8_0', 'Q4_K_M', 'Q2_K'],
  'qwen3-0.6b': ['F16', 'BF16', 'Q4_K_M', 'Q6_K'],
  'gemma-3-1b-it': ['F16', 'Q4_0', 'Q4_K_M', 'Q5_K_M'],
  'llama-3.2-1b-instruct': ['F16', 'Q4_K_M', 'Q3_K_M', 'Q5_K_M'],
  'smollm2-135m-instruct': ['F16', 'Q8_0', 'Q4_K_M'],
};

/** Path of `name` in `type`, building (and quantizing) it first unless cached. */
export async function realModelFile(name: RealModelName, type: FileType): Promise<string> {
  const source = await makeTestModel(REAL_MODELS[name].spec);
  return type === 'F16' ? source : llamaQuantize(source, type);
}
