/**
 * The trainer's frozen base (training/base_model.py: PyTorch, weights dequantized to float32) against llama.cpp
 * (node-llama-cpp, flash attention off, f32 KV cache) and against the engine (the SDK's evaluate(), f32 KV cache)
 * on the same small random-weight files (training/base-fixtures.ts): every architecture in the options real files use
 * × every weight type the engine runs, made by llama.cpp's own quantizer (so K-quant files carry its per-tensor mixes).
 *
 * The measure is the largest |Δlogit| over all positions of one teacher-forced sequence, relative to the largest
 * |logit| there. F32 differs only in summation order. Other types differ because llama.cpp (and the engine, which
 * mirrors it) rounds the activations a matrix multiplies to that matrix's vec_dot type (F16 to f16, BF16 to bf16,
 * Q4_0/Q5_0/Q8_0 to Q8_0 blocks, Q4_1/Q5_1 to Q8_1, K-quants to Q8_K) while the trainer multiplies float32
 * activations by the dequantized weights: RELATIVE_BOUND states how far that may take them. A table of everything
 * covered is printed at the end, with what quantizing the weights itself moves the logits beside it.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openLlamaCpp } from '../test/oracle/llamacpp.js';
import { maxAbsDiff } from '../test/reference/compare.js';
import { loadModel } from '../sdk/src/node.js';
import { Prng } from '../test/fixtures/prng.js';
import { buildVocab } from '../test/fixtures/vocab.js';
import type { ModelSpec } from '../test/fixtures/models.js';
import { BASE_SPECS, makeBase, type FileType } from './base-fixtures.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const PYTHON = '/usr/bin/python3';
const SEQUENCE = 48; // longer than gemma3's window (8) and the YaRN case's original context (16)

const ALL_TYPES = ['F32', 'F16', 'BF16', 'Q8_0', 'Q4_0', 'Q4_1', 'Q5_0', 'Q5_1', 'Q2_K', 'Q3_K_M', 'Q4_K_M', 'Q5_K_M', 'Q6_K'] as const satisfies readonly FileType[];
type TestedType = (typeof ALL_TYPES)[number];
/**
 * Largest |Δlogit| / largest |logit| allowed, per file type: about 3× the largest measured on this machine (see the
 * printed table). F32 differs in summation order only (≤ 1e-6), except in gemma3, whose GELU goes through ggml's f16
 * table and whose post-norms rescale small outputs: there a summation-order difference alone (the trainer's own f32
 * against f64 matmuls) moves the logits by 1e-4.
 */
const RELATIVE_BOUND: Record<TestedType, number> = {
  F32: 1e-5, F16: 2e-3, BF16: 1e-2, Q8_0: 5e-2, Q4_0: 5e-2, Q4_1: 5e-2, Q5_0: 5e-2, Q5_1: 5e-2,
  Q2_K: 5e-2, Q3_K_M: 5e-2, Q4_K_M: 5e-2, Q5_K_M: 5e-2, Q6_K: 5e-2,
};
const GEMMA3_F32_BOUND = 5e-4;

/**
 * Every type on llama; on the other architectures the types that reach their own tensors in another way (F16 and
 * BF16 norms stay F32, Q8_0 everywhere, a K-quant mix with Q6_K rows) at K-quantizable dims (256), and SmolLM2's
 * 576, where llama.cpp's quantizer falls back to Q5_0 / Q8_0 per tensor.
 */
const CASES: { name: string; spec: ModelSpec; types: readonly TestedType[] }[] = [
  { name: 'llama (GQA, untied)', spec: BASE_SPECS.llama, types: ALL_TYPES },
  { name: 'llama 3.2 (rope_freqs, head_dim key)', spec: BASE_SPECS.llama32, types: ['F32', 'Q4_K_M'] },
  { name: 'llama linear RoPE ×4', spec: BASE_SPECS.llamaLinear, types: ['F32'] },
  { name: 'llama YaRN ×4 from 16 tokens', spec: BASE_SPECS.llamaYarn, types: ['F32'] },
  { name: 'llama SmolLM2 shape (576, 9/3 heads, tied)', spec: BASE_SPECS.smollm, types: ['Q4_K_M'] },
  { name: 'qwen2 (Q/K/V biases, NEOX, tied)', spec: BASE_SPECS.qwen2, types: ['F32', 'F16', 'Q8_0', 'Q4_K_M'] },
  { name: 'qwen3 (Q/K norms, head_dim 128 ≠ 256/4, tied)', spec: BASE_SPECS.qwen3, types: ['F32', 'F16', 'BF16', 'Q4_K_M'] },
  { name: 'gemma3 (window 8 on 5 of 6 layers, two RoPE bases)', spec: BASE_SPECS.gemma3, types: ['F32', 'F16', 'Q8_0', 'Q4_K_M', 'Q6_K'] },
  { name: 'gemma3 linear ×8 on global layers', spec: BASE_SPECS.gemma3Linear, types: ['F32'] },
];

interface Case { name: string; type: TestedType; path: string; f32Path: string; ids: number[] }
interface Delta { absolute: number; relative: number }
interface Row { case: string; types: string; llamacpp: Delta; engine: Delta; quantization?: Delta }

function torchMissing(): string | undefined {
  const probe = spawnSync(PYTHON, ['-c', 'import torch, numpy'], { encoding: 'utf8' });
  if (probe.error) return `${PYTHON} not runnable: ${probe.error.message}`;
  if (probe.status !== 0) return `torch/numpy not importable by ${PYTHON}`;
  return undefined;
}
const SKIP = torchMissing();

/** Largest |Δ| over all rows, and that over the largest |logit| of the reference rows. */
function delta(ours: Float32Array[], reference: Float32Array[]): Delta {
  let absolute = 0;
  let scale = 0;
  ours.forEach((row, i) => {
    absolute = Math.max(absolute, maxAbsDiff(row, reference[i]!));
    for (const v of reference[i]!) scale = Math.max(scale, Math.abs(v));
  });
  return { absolute, relative: absolute / scale };
}

function rows(flat: Float32Array, vocab: number): Float32Array[] {
  return Array.from({ length: flat.length / vocab }, (_, i) => flat.subarray(i * vocab, (i + 1) * vocab));
}

describe.skipIf(SKIP !== undefined)(`trainer base vs llama.cpp and the engine${SKIP ? ` (skipped: ${SKIP})` : ''}`, () => {
  const dir = mkdtempSync(join(tmpdir(), 'base-parity-'));
  const cases: Case[] = [];
  /** The trainer's logits per file, and the file's tensor types. */
  const torch = new Map<string, { logits: Float32Array[]; types: string }>();
  const table: Row[] = [];

  beforeAll(async () => {
    for (const { name, spec, types } of CASES) {
      const rng = new Prng(spec.seed + 1);
      const vocab = buildVocab(spec.vocab).tokens.length;
      const ids = Array.from({ length: SEQUENCE }, () => Math.floor(rng.next() * vocab));
      for (const type of types) cases.push({ name, type, path: await makeBase(spec, type), f32Path: await makeBase(spec, 'F32'), ids });
    }
    // One Python process for every file (and each quantized file's F32 original): torch starts once.
    const files = [...new Map(cases.flatMap((c) => [[c.path, c.ids], [c.f32Path, c.ids]] as const)).entries()];
    const request = join(dir, 'request.json');
    writeFileSync(request, JSON.stringify(files.map(([path, ids], i) => ({ path, ids, out: join(dir, `${i}.f32`) }))));
    const run = spawnSync(PYTHON, ['-m', 'training.dump_logits', request], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, OPENBLAS_NUM_THREADS: '1' } });
    if (run.status !== 0) throw new Error(`training.dump_logits failed: ${run.stderr || run.stdout}`);
    run.stdout.trim().split('\n').forEach((line, i) => {
      const { vocab, types } = JSON.parse(line) as { vocab: number; types: Record<string, number> };
      const flat = new Float32Array(readFileSync(join(dir, `${i}.f32`)).buffer.slice(0));
      torch.set(files[i]![0], { logits: rows(flat, vocab), types: Object.entries(types).map(([t, n]) => `${t}×${n}`).join(' ') });
    });
  }, 900_000);

  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
    if (table.length === 0) return;
    const fmt = (d: Delta | undefined) => (d === undefined ? '' : `${d.absolute.toExponential(2)} (${d.relative.toExponential(1)})`);
    const lines = table.map((r) => `${r.case.padEnd(58)} ${fmt(r.llamacpp).padEnd(20)} ${fmt(r.engine).padEnd(20)} ${fmt(r.quantization).padEnd(20)} ${r.types}`);
    const header = `${'architecture, file type'.padEnd(58)} ${'vs llama.cpp'.padEnd(20)} ${'vs engine'.padEnd(20)} ${'F32 file vs this'.padEnd(20)} tensor types`;
    console.log(['trainer (PyTorch) logits: max |Δlogit| (÷ max |logit|); the last column is what quantization itself moves them', header, ...lines].join('\n'));
  });

  for (const { name, types } of CASES) {
    describe.each(types)(`${name} %s`, (type) => {
      const bound = type === 'F32' && name.startsWith('gemma3') ? GEMMA3_F32_BOUND : RELATIVE_BOUND[type];
      it(`matches llama.cpp and the engine within ${bound} of the largest logit`, async () => {
        const c = cases.find((x) => x.name === name && x.type === type)!;
        const ours = torch.get(c.path)!;
        const oracle = await openLlamaCpp(c.path, { kvType: 'f32' });
        let llamacpp: Delta;
        try {
          llamacpp = delta(ours.logits, await oracle.logits(c.ids));
        } finally {
          await oracle.dispose();
        }
        const model = await loadModel(c.path, { kvType: 'f32' });
        let engine: Delta;
        try {
          engine = delta(ours.logits, await model.evaluate(c.ids));
        } finally {
          model.dispose();
        }
        const quantization = type === 'F32' ? undefined : delta(torch.get(c.f32Path)!.logits, ours.logits);
        table.push({ case: `${name} ${type}`, types: ours.types, llamacpp, engine, quantization });
        expect(llamacpp.relative).toBeLessThanOrEqual(bound);
        expect(engine.relative).toBeLessThanOrEqual(bound);
      }, 120_000);
    });
  }
});
