/**
 * bench/gpu/torch_decode.py (PyTorch eager with a KV cache, the GPU comparison's reference) against the SDK on
 * the demo model, on the CPU: the same greedy tokens. Keeps the GPU kit's reference honest where CI can run it,
 * and is a second implementation checking the engine (llama.cpp is the first). Skipped without Debian's torch.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadModel } from '../../sdk/src/index.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const python = '/usr/bin/python3';
const probe = spawnSync(python, ['-c', 'import torch, numpy'], { encoding: 'utf8' });
const skipReason = probe.error ? `${python} not runnable` : probe.status !== 0 ? `torch/numpy not importable by ${python}` : undefined;

interface TorchReport {
  results: { model: string; prompt: number[]; tokens: number[] }[];
}

describe('PyTorch eager decoding (the GPU kit reference)', () => {
  it('gives the SDK greedy tokens on the demo model (F16 and Q8_0)', async (ctx) => {
    if (skipReason) ctx.skip(skipReason);
    const files = ['models/demo/demo-f16.gguf', 'models/demo/demo-q8_0.gguf'];
    const stdout = execFileSync(python, ['-m', 'bench.gpu.torch_decode', ...files, '--tokens', '16'], {
      cwd: repoRoot,
      env: { ...process.env, OPENBLAS_NUM_THREADS: '1' },
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const report = JSON.parse(stdout) as TorchReport;
    for (const [i, file] of files.entries()) {
      const { prompt, tokens } = report.results[i]!;
      const model = await loadModel(fileURLToPath(new URL(`../../${file}`, import.meta.url)));
      // Q8_0 weights dequantize to the same values in both; the engine also rounds activations to Q8_0, PyTorch
      // does not, which this trained model's clear margins absorb over 16 tokens.
      expect((await model.complete(prompt, { maxTokens: 16, temperature: 0 })).tokens, file).toEqual(tokens);
      model.dispose();
    }
  });
});
