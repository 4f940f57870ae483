/**
 * llama.cpp's own quantizer as a fixture builder: a GGUF of any file type (Q4_K_M, Q5_K_S, Q6_K, …) made
 * from an F32 GGUF by `llama_model_quantize`, the function llama-quantize runs, with its per-tensor mix rules
 * (e.g. Q6_K for some attn_v / ffn_down rows, Q5_0 / Q8_0 where rows are not a multiple of 256).
 * Runs llama-quantize.py (python3 ctypes on node-llama-cpp's libllama); files are cached beside the input.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, renameSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** llama.cpp's `enum llama_ftype` values. */
export const LLAMA_FTYPE = {
  F16: 1, Q4_0: 2, Q4_1: 3, Q8_0: 7, Q5_0: 8, Q5_1: 9, Q2_K: 10, Q3_K_S: 11, Q3_K_M: 12, Q3_K_L: 13,
  Q4_K_S: 14, Q4_K_M: 15, Q5_K_S: 16, Q5_K_M: 17, Q6_K: 18, BF16: 32,
} as const;
export type LlamaFileType = keyof typeof LLAMA_FTYPE;

const SCRIPT = fileURLToPath(new URL('./llama-quantize.py', import.meta.url));
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Path of `input` (an F32 or F16 GGUF) quantized to `fileType`, quantizing it first unless cached. */
export function llamaQuantize(input: string, fileType: LlamaFileType): string {
  const output = input.replace(/\.gguf$/, `.${fileType}.gguf`);
  if (existsSync(output)) return output;
  const partial = `${output}.${process.pid}.partial`;
  execFileSync('python3', [SCRIPT, input, partial, String(LLAMA_FTYPE[fileType])], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
  renameSync(partial, output);
  return output;
}
