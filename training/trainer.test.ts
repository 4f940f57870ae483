// Runs the Python training smoke test (tiny head on a tiny random base, export, reload)
// and, when the SDK and its engine are built, generates from the exported base GGUF.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { RecycleGPTError } from '../sdk/src/errors.js';
import { BASE_SPECS, makeBase } from './base-fixtures.js';

const repoRoot = fileURLToPath(new URL('..', import.meta.url));
const python = '/usr/bin/python3';

function torchMissingReason(): string | undefined {
  const probe = spawnSync(python, ['-c', 'import torch, numpy'], { encoding: 'utf8' });
  if (probe.error) return `${python} not runnable: ${probe.error.message}`;
  if (probe.status !== 0) return `torch/numpy not importable by ${python}: ${probe.stderr.trim().split('\n').pop()}`;
  return undefined;
}

const skipReason = torchMissingReason();
const sdkModel = join(repoRoot, 'sdk/src/model.ts');
const engine = join(repoRoot, 'sdk/wasm/recyclegpt.wasm');

describe.skipIf(skipReason !== undefined)(`training smoke ${skipReason ? `(skipped: ${skipReason})` : ''}`, () => {
  const outDir = mkdtempSync(join(tmpdir(), 'recycle-train-'));
  afterAll(() => rmSync(outDir, { recursive: true, force: true }));

  it('trains, resumes and exports a recycle head on a tiny base', () => {
    const output = execFileSync(python, ['-m', 'unittest', '-v', 'training.test_smoke'], {
      cwd: repoRoot,
      env: { ...process.env, SMOKE_OUT: outDir, OPENBLAS_NUM_THREADS: '1' },
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    expect(output).toContain('wrote');
    expect(existsSync(join(outDir, 'base-f16.gguf'))).toBe(true);
    expect(existsSync(join(outDir, 'run/tiny-recycle.gguf'))).toBe(true);
  });

  it('passes the GGUF, model, export and smoke unit tests', () => {
    const run = spawnSync(python, ['-m', 'unittest', 'discover', '-s', 'training', '-t', '.', '-p', 'test_*.py'], {
      cwd: repoRoot,
      env: { ...process.env, OPENBLAS_NUM_THREADS: '1' },
      encoding: 'utf8',
    });
    expect(run.stderr).toMatch(/\nOK\b/);
    expect(run.status).toBe(0);
  });

  const sdkReady = existsSync(sdkModel) && existsSync(engine);
  it.skipIf(!sdkReady)(`loads the exported base with the SDK ${sdkReady ? '' : '(skipped: SDK engine not built; run `npm run build`)'}`, async () => {
    const sdkIndex = '../sdk/src/index.js'; // a variable: this file must still load while the SDK is being written
    const { loadModel } = await import(sdkIndex);
    const model = await loadModel(join(outDir, 'base-f16.gguf'));
    try {
      expect(model.info.architecture).toBe('llama');
      expect(model.info.layers).toBe(2);
      const result = await model.complete('the model', { maxTokens: 5, temperature: 0 });
      expect(result.tokens.length).toBeGreaterThan(0);
      expect(result.tokens.length).toBeLessThanOrEqual(5);
    } finally {
      model.dispose();
    }
  });

  it.skipIf(!sdkReady)('loads the trained head with its base in the engine; exact decoding equals plain decoding', async () => {
    const sdkIndex = '../sdk/src/index.js';
    const { loadModel } = await import(sdkIndex);
    for (const base of ['base-f16.gguf', 'base-q8_0.gguf']) {
      const model = await loadModel(join(outDir, base), { recycle: join(outDir, 'run/tiny-recycle.gguf') });
      try {
        expect(model.info.hasRecycleHead).toBe(true);
        const off = await model.complete('the model', { maxTokens: 12, temperature: 0 });
        const exact = await model.complete('the model', { maxTokens: 12, temperature: 0, decode: { mode: 'exact' } });
        expect(exact.tokens).toEqual(off.tokens);
      } finally {
        model.dispose();
      }
    }
  });
});

/**
 * A head for a base shaped like the files people download: each architecture quantized to Q4_K_M by llama.cpp's own
 * quantizer (training/base-fixtures.ts), trained for a few steps by `training.train head` and loaded with its base
 * by the engine, whose exact decoding must equal its plain decoding. Covers the architectures the engine runs and
 * lists the others.
 */
describe.skipIf(skipReason !== undefined)('a head for a downloaded-style base', () => {
  const outDir = mkdtempSync(join(tmpdir(), 'recycle-head-'));
  afterAll(() => rmSync(outDir, { recursive: true, force: true }));
  const ARCHS = { llama: BASE_SPECS.smollm, qwen2: BASE_SPECS.qwen2, qwen3: BASE_SPECS.qwen3, gemma3: BASE_SPECS.gemma3 } as const;

  it.skipIf(!existsSync(engine))('trains on each architecture the engine runs; exact decoding equals plain decoding with the head', async () => {
    const { loadModel } = await import('../sdk/src/node.js');
    const runnable: [string, string][] = [];
    const refused: string[] = [];
    for (const [arch, spec] of Object.entries(ARCHS)) {
      const base = makeBase(spec, 'Q4_K_M');
      try {
        (await loadModel(base)).dispose();
        runnable.push([arch, base]);
      } catch (error) {
        if (!(error instanceof RecycleGPTError && error.code === 'GGUF_UNSUPPORTED') || arch === 'llama') throw error;
        refused.push(arch);
      }
    }
    const tokens = join(outDir, 'tokens.bin');
    writeFileSync(tokens, new Uint16Array(Array.from({ length: 4000 }, (_, i) => (i * 7919) % 640)));
    const train = runnable.map(([arch, base]) => `train.main(["head", "--base", "${base}", "--train-tokens", "${tokens}", "--out", "${join(outDir, arch)}", "--name", "${arch}", "--ctx", "32", "--batch", "2", "--steps", "3", "--threads", "1"])`);
    execFileSync(python, ['-c', ['from training import train', ...train].join('\n')], { cwd: repoRoot, env: { ...process.env, OPENBLAS_NUM_THREADS: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    for (const [arch, base] of runnable) {
      const model = await loadModel(base, { recycle: join(outDir, arch, `${arch}-recycle.gguf`) });
      try {
        expect(model.info.hasRecycleHead).toBe(true);
        const off = await model.complete('the model', { maxTokens: 12, temperature: 0 });
        const exact = await model.complete('the model', { maxTokens: 12, temperature: 0, decode: { mode: 'exact' } });
        expect(exact.tokens, arch).toEqual(off.tokens);
      } finally {
        model.dispose();
      }
    }
    console.log(`heads trained and run on ${runnable.map(([a]) => a).join(', ')}${refused.length ? `; the engine refuses ${refused.join(', ')} bases so far` : ''}`);
  });
});
