// Runs the Python training smoke test (tiny head on a tiny random base, export, reload)
// and, when the SDK and its engine are built, generates from the exported base GGUF.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
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
 * by the engine, whose exact decoding must equal its plain decoding.
 */
describe.skipIf(skipReason !== undefined)('a head for a downloaded-style base', () => {
  const outDir = mkdtempSync(join(tmpdir(), 'recycle-head-'));
  afterAll(() => rmSync(outDir, { recursive: true, force: true }));
  const ARCHS = { llama: BASE_SPECS.smollm, qwen2: BASE_SPECS.qwen2, qwen3: BASE_SPECS.qwen3, gemma3: BASE_SPECS.gemma3 } as const;

  it.skipIf(!existsSync(engine))('trains on every architecture; exact decoding equals plain decoding with the head', async () => {
    const { loadModel } = await import('../sdk/src/node.js');
    const bases = await Promise.all(Object.entries(ARCHS).map(async ([arch, spec]) => [arch, await makeBase(spec, 'Q4_K_M')] as const));
    const tokens = join(outDir, 'tokens.bin');
    writeFileSync(tokens, new Uint16Array(Array.from({ length: 4000 }, (_, i) => (i * 7919) % 640)));
    // One Python process for all four: torch starts once.
    const train = bases.map(([arch, base]) => `train.main(["head", "--base", "${base}", "--train-tokens", "${tokens}", "--out", "${join(outDir, arch)}", "--name", "${arch}", "--ctx", "32", "--batch", "2", "--steps", "3", "--threads", "1"])`);
    execFileSync(python, ['-c', ['from training import train', ...train].join('\n')], { cwd: repoRoot, env: { ...process.env, OPENBLAS_NUM_THREADS: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    for (const [arch, base] of bases) {
      const model = await loadModel(base, { recycle: join(outDir, arch, `${arch}-recycle.gguf`) });
      try {
        expect(model.info.architecture).toBe(arch);
        expect(model.info.hasRecycleHead).toBe(true);
        const off = await model.complete('the model', { maxTokens: 12, temperature: 0 });
        const exact = await model.complete('the model', { maxTokens: 12, temperature: 0, decode: { mode: 'exact' } });
        expect(exact.tokens, arch).toEqual(off.tokens);
      } finally {
        model.dispose();
      }
    }
  });
});

/**
 * The contract between the trainer and the engine, per architecture: a head trained on an F32 base (F32 head
 * weights) gives the same logits for x_{t+2} in the engine (its head fed by its own base's hidden states, f32 KV
 * caches) as in the trainer (its head fed by its frozen base). They differ in summation order only, which gemma3's
 * f16-table GELU and post-norms magnify (see base-parity.test.ts).
 */
describe.skipIf(skipReason !== undefined)("the engine's recycle head is the trainer's", () => {
  const outDir = mkdtempSync(join(tmpdir(), 'recycle-contract-'));
  afterAll(() => rmSync(outDir, { recursive: true, force: true }));
  const ARCHS = { llama: BASE_SPECS.llama32, qwen2: BASE_SPECS.qwen2, qwen3: BASE_SPECS.qwen3, gemma3: BASE_SPECS.gemma3 } as const;
  const IDS = Array.from({ length: 24 }, (_, i) => (i * 131 + 7) % 640); // one engine pass (at most 32 rows)

  it.skipIf(!existsSync(engine))('same head logits in the engine as in PyTorch, on every architecture', async () => {
    const { openContext } = await import('../sdk/src/model.js');
    await import('../sdk/src/node.js'); // model files by path
    const bases = await Promise.all(Object.entries(ARCHS).map(async ([arch, spec]) => [arch, await makeBase(spec, 'F32')] as const));
    const tokens = join(outDir, 'tokens.bin');
    writeFileSync(tokens, new Uint16Array(Array.from({ length: 4000 }, (_, i) => (i * 7919) % 640)));
    const request = bases.map(([arch, base]) => ({ path: base, ids: IDS, out: join(outDir, `${arch}.base.f32`), head: join(outDir, arch, `${arch}-recycle.gguf`), head_out: join(outDir, `${arch}.head.f32`) }));
    writeFileSync(join(outDir, 'request.json'), JSON.stringify(request));
    const train = bases.map(([arch, base]) => `train.main(["head", "--base", "${base}", "--train-tokens", "${tokens}", "--out", "${join(outDir, arch)}", "--name", "${arch}", "--ctx", "32", "--batch", "2", "--steps", "3", "--threads", "1", "--head-type", "f32"])`);
    const script = ['import sys', 'from training import train, dump_logits', ...train, `dump_logits.main([${JSON.stringify(join(outDir, 'request.json'))}])`];
    execFileSync(python, ['-c', script.join('\n')], { cwd: repoRoot, env: { ...process.env, OPENBLAS_NUM_THREADS: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });

    const measured: string[] = [];
    for (const [arch, base] of bases) {
      const theirs = new Float32Array(readFileSync(join(outDir, `${arch}.head.f32`)).buffer.slice(0));
      const { context } = await openContext(base, { recycle: join(outDir, arch, `${arch}-recycle.gguf`), kvType: 'f32' });
      const engineModel = context.llama;
      try {
        engineModel.forward(IDS, 0, 0);
        engineModel.recycleForward('base', 0, IDS.slice(1), 1, 0); // head row t: h_t and x_{t+1}, at position t + 1
        const vocab = theirs.length / (IDS.length - 1);
        let delta = 0;
        let scale = 0;
        for (let row = 0; row < IDS.length - 1; row++) {
          const ours = engineModel.recycleLogits(row);
          for (let i = 0; i < vocab; i++) {
            delta = Math.max(delta, Math.abs(ours[i]! - theirs[row * vocab + i]!));
            scale = Math.max(scale, Math.abs(theirs[row * vocab + i]!));
          }
        }
        measured.push(`${arch} ${(delta / scale).toExponential(1)}`);
        expect(delta / scale, arch).toBeLessThan(arch === 'gemma3' ? 5e-4 : 1e-5);
      } finally {
        engineModel.free();
      }
    }
    console.log(`recycle head logits, engine vs trainer (max |Δ| / max |logit|): ${measured.join(', ')}`);
  });
});
