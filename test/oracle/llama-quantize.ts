/**
 * llama.cpp's own quantizer as a fixture builder: a GGUF of any file type (Q4_K_M, Q5_K_S, Q6_K, …) made
 * from an F32 or F16 GGUF by `llama_model_quantize`, the function llama-quantize runs, with its per-tensor mix
 * rules (e.g. Q6_K for some attn_v / ffn_down rows, Q5_0 / Q8_0 where rows are not a multiple of 256).
 * Runs test/fixtures/llama-quantize-oracle.py (python3 ctypes on node-llama-cpp's libllama); files are cached
 * beside the input.
 */
import { existsSync, renameSync } from 'node:fs';
import { runLlamaQuantize } from '../fixtures/llama-quant-oracle.js';
import { FILE_TYPE } from '../fixtures/llama-quant.js';

/** llama.cpp's `enum llama_ftype` values: the mixes the engine loads, and types it refuses by name (for those tests). */
export const LLAMA_FTYPE = { ...FILE_TYPE, IQ4_NL: 25, IQ4_XS: 30 } as const;
export type LlamaFileType = Exclude<keyof typeof LLAMA_FTYPE, 'F32'>;

/** Path of `input` (an F32 or F16 GGUF) quantized to `fileType`, quantizing it first unless cached. */
export function llamaQuantize(input: string, fileType: LlamaFileType): string {
  const output = input.replace(/\.gguf$/, `.${fileType}.gguf`);
  if (existsSync(output)) return output;
  const partial = `${output}.${process.pid}.partial`;
  runLlamaQuantize([{ input, output: partial, ftype: LLAMA_FTYPE[fileType], nthread: 1 }]);
  renameSync(partial, output);
  return output;
}
