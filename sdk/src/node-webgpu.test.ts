/**
 * The WebGPU backend in Node through Dawn (the `webgpu` package), as a GPU host runs it: the built CLI with
 * `--backend webgpu` on the demo model and its head, on chromium's SwiftShader Vulkan driver. Dawn here runs a
 * few tokens (SwiftShader takes about a second per token), so this is a smoke test; the kernels' numbers are
 * tested in chromium (backend-webgpu.test.ts, kernels/src/webgpu.test.ts). Skipped, with the reason, without
 * SwiftShader or the built SDK.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { KernelError } from '@recyclegpt/kernels';
import { sdkErrors } from './backend-webgpu.js';
import { InvalidArgumentError, RecycleGPTError } from './errors.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const cli = fileURLToPath(new URL('../bin/recyclegpt.js', import.meta.url));
const SWIFTSHADER = '/usr/lib/chromium'; // Debian chromium's bundled Vulkan loader and SwiftShader ICD
const ICD = `${SWIFTSHADER}/vk_swiftshader_icd.json`;
const skipReason = !existsSync(ICD)
  ? `no SwiftShader Vulkan driver at ${ICD} (install Debian's chromium)`
  : !existsSync(new URL('../dist/cli.js', import.meta.url))
    ? 'the SDK is not built (npm run build)'
    : undefined;

interface RunJSON {
  tokens: number[];
  backend: string;
  backendReason: string;
  stats: { fullPasses: number; proposed?: number };
}

async function run(...args: string[]): Promise<RunJSON> {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [cli, 'run', '--model', 'models/demo/demo-q8_0.gguf', '--prompt', 'The function returns', '--max-tokens', '6', '--temperature', '0', '--json', ...args],
    { cwd: root, timeout: 120_000, env: { ...process.env, VK_ICD_FILENAMES: ICD, LD_LIBRARY_PATH: SWIFTSHADER } },
  );
  return JSON.parse(stdout) as RunJSON;
}

describe('WebGPU in Node (Dawn on SwiftShader)', () => {
  it('recyclegpt run --backend webgpu gives the WASM tokens, plain and in exact mode', async (ctx) => {
    if (skipReason) ctx.skip(skipReason);
    const wasm = await run('--backend', 'wasm');
    const gpu = await run('--backend', 'webgpu');
    expect([gpu.backend, gpu.backendReason]).toEqual(['webgpu', 'asked for']);
    expect(gpu.tokens).toEqual(wasm.tokens);
    const exact = await run('--backend', 'webgpu', '--recycle', 'models/demo/demo-recycle.gguf', '--mode', 'exact');
    expect(exact.backend).toBe('webgpu');
    expect(exact.stats.proposed, 'the head drafted').toBeGreaterThan(0);
    expect(exact.tokens).toEqual(gpu.tokens);
    expect(exact.tokens).toEqual(wasm.tokens);
  }, 300_000);
});

describe('kernel errors through the SDK', () => {
  it('become the SDK error classes with the same code, sync and async', async () => {
    const sync = (() => {
      try {
        return sdkErrors(() => {
          throw new KernelError('INVALID_ARGUMENT', 'bad token');
        });
      } catch (e) {
        return e;
      }
    })();
    expect(sync).toBeInstanceOf(InvalidArgumentError);
    const async = await sdkErrors(() => Promise.reject(new KernelError('CONTEXT_FULL', 'full'))).catch((e: unknown) => e);
    expect(async).toBeInstanceOf(RecycleGPTError);
    expect([(async as RecycleGPTError).code, (async as RecycleGPTError).message]).toEqual(['CONTEXT_FULL', 'full']);
    const other = new TypeError('not ours');
    expect(await sdkErrors(() => Promise.reject(other)).catch((e: unknown) => e)).toBe(other);
  });
});
