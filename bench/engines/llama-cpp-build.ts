/**
 * Which llama.cpp CPU build node-llama-cpp runs. Its bins folder holds one ggml CPU backend per x86-64
 * level (libggml-cpu-haswell.so: AVX2; -skylakex / -icelake / -zen4: AVX-512; -sapphirerapids: AVX-512 +
 * AMX; …) and ggml loads the best one the CPU supports. Native figures depend on that choice, so the
 * report names it; `npm run bench -- --llama-cpu-variant haswell` hides the others for a run (where the
 * CPU has AMX, run once without and once with the AVX-512 build to give both ratios).
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const LLAMA_BINS = fileURLToPath(new URL('../../tools/peers/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64/', import.meta.url));
const HIDDEN = join(LLAMA_BINS, 'hidden-by-bench');
const VARIANT = /^libggml-cpu-(.+)\.so$/;

/** CPU backend variants in the bins folder ('haswell', 'zen4', …). */
export function cpuVariants(): string[] {
  return readdirSync(LLAMA_BINS).flatMap((f) => VARIANT.exec(f)?.[1] ?? []);
}

/** The CPU backends loaded into this process (after a model was loaded), from /proc/self/maps. */
export function loadedCpuVariants(): string[] {
  const paths = readFileSync('/proc/self/maps', 'utf8').split('\n').map((line) => line.split(/\s+/)[5] ?? '');
  return [...new Set(paths.flatMap((p) => VARIANT.exec(p.split('/').pop() ?? '')?.[1] ?? []))];
}

/** Puts back files an interrupted run left hidden. */
export function restoreCpuVariants(): void {
  if (!existsSync(HIDDEN)) return;
  for (const file of readdirSync(HIDDEN)) renameSync(join(HIDDEN, file), join(LLAMA_BINS, file));
  rmdirSync(HIDDEN);
}

/** Hides every CPU backend but `variant` from ggml's loader until the returned function is called. */
export function forceCpuVariant(variant: string): () => void {
  restoreCpuVariants();
  const all = cpuVariants();
  if (!all.includes(variant)) throw new Error(`no llama.cpp CPU build '${variant}' in ${LLAMA_BINS}; there are: ${all.join(', ')}`);
  mkdirSync(HIDDEN);
  for (const other of all.filter((v) => v !== variant)) renameSync(join(LLAMA_BINS, `libggml-cpu-${other}.so`), join(HIDDEN, `libggml-cpu-${other}.so`));
  return restoreCpuVariants;
}
