// Runs the Python training smoke test (tiny head on a tiny random base, export, reload)
// and, when the SDK and its engine are built, generates from the exported base GGUF.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

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
