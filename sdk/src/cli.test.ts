import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { makeTestModel, STANDARD_SPECS } from '../../test/fixtures/models.js';
import { loadModel } from './model.js';

const cli = fileURLToPath(new URL('./cli.ts', import.meta.url));
const root = fileURLToPath(new URL('../..', import.meta.url));

async function recyclegpt(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, ['--import', 'tsx', cli, ...args], { cwd: root });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

let path: string;
beforeAll(async () => {
  path = await makeTestModel(STANDARD_SPECS.f16_gpt2_gqa!);
});

describe('recyclegpt info', () => {
  it('describes architecture, sizes, quant types and tokenizer', async () => {
    const { code, stdout } = await recyclegpt('info', path);
    expect(code).toBe(0);
    expect(stdout).toMatch(/architecture\s+llama/);
    expect(stdout).toMatch(/types\s+F16 ×\d+/);
    expect(stdout).toMatch(/tokenizer\s+gpt2, 640 tokens/);
    expect(stdout).toMatch(/heads\s+4 \(kv 2, head dim 16\)/);
  });

  it('prints JSON with --json', async () => {
    const { stdout } = await recyclegpt('info', path, '--json');
    const info = JSON.parse(stdout);
    expect(info).toMatchObject({ architecture: 'llama', tokenizerModel: 'gpt2', shape: { dim: 64, layers: 2 } });
  });
});

describe('recyclegpt run', () => {
  it('prints the text, the generated ids and stats as one JSON object, like the SDK', async () => {
    const { code, stdout } = await recyclegpt('run', '--model', path, '--prompt', 'Hello world', '--max-tokens', '9', '--temperature', '0', '--json');
    expect(code).toBe(0);
    const out = JSON.parse(stdout);
    expect(out.tokens).toHaveLength(9);
    expect(out.stats).toMatchObject({ generatedTokens: 9, finishReason: 'length' });
    const model = await loadModel(path);
    expect(out.kernels).toBe(model.info.kernels);
    const expected = await model.complete('Hello world', { maxTokens: 9, temperature: 0 });
    model.dispose();
    expect(out.tokens).toEqual(expected.tokens);
    expect(out.text).toBe(expected.text);
  });

  it('streams plain text without --json', async () => {
    const { code, stdout, stderr } = await recyclegpt('run', '--model', path, '--prompt', 'Hi', '--max-tokens', '4', '--seed', '3');
    expect(code).toBe(0);
    expect(stdout.length).toBeGreaterThan(0);
    expect(stderr).toMatch(/4 tokens, prefill .* tok\/s, decode .* tok\/s/);
  });

  it('fails with one line and a non-zero exit on bad input', async () => {
    const junk = join(tmpdir(), `junk-${process.pid}.gguf`);
    await writeFile(junk, 'GGUF but not really');
    const cases: [string[], number, RegExp][] = [
      [['run', '--model', '/nonexistent.gguf', '--prompt', 'x'], 1, /cannot|no such file/i],
      [['run', '--model', junk, '--prompt', 'x'], 1, /GGUF|truncated/],
      [['info', junk], 1, /GGUF|truncated/],
      [['run', '--model', path], 2, /--prompt/],
      [['run', '--model', path, '--prompt', 'x', '--max-tokens', 'lots'], 2, /--max-tokens must be an integer/],
      [['run', '--model', path, '--prompt', 'x', '--temperature=-3'], 1, /temperature must be/],
      [['run', '--model', path, '--prompt', 'x', '--bogus'], 2, /bogus/],
      [['frobnicate'], 2, /unknown command/],
    ];
    for (const [args, code, message] of cases) {
      const result = await recyclegpt(...args);
      expect(result.code, args.join(' ')).toBe(code);
      expect(result.stderr.trim().split('\n')).toHaveLength(1);
      expect(result.stderr).toMatch(/^recyclegpt: error: /);
      expect(result.stderr).toMatch(message);
    }
  });
});

describe('recyclegpt run --recycle', () => {
  it('reports recycle stats and keeps exact output equal to plain decoding', async () => {
    const demo = (file: string) => fileURLToPath(new URL(`../../models/demo/${file}`, import.meta.url));
    const args = ['run', '--model', demo('demo-q8_0.gguf'), '--prompt', 'The function', '--max-tokens', '24', '--temperature', '0', '--json'];
    const off = JSON.parse((await recyclegpt(...args)).stdout);
    const { code, stdout } = await recyclegpt(...args, '--recycle', demo('demo-recycle.gguf'), '--mode', 'exact');
    expect(code).toBe(0);
    const exact = JSON.parse(stdout);
    expect(exact.tokens).toEqual(off.tokens);
    expect(exact.stats).toMatchObject({ decodeMode: 'exact' });
    expect(exact.stats.recycled).toBeGreaterThan(0);
    expect(exact.stats.acceptanceRate).toBeGreaterThan(0);
    expect(exact.stats.fullPasses).toBeLessThan(off.stats.fullPasses);
    const missingHead = await recyclegpt('run', '--model', demo('demo-q8_0.gguf'), '--prompt', 'x', '--mode', 'fast');
    expect(missingHead.code).toBe(2);
    expect(missingHead.stderr).toMatch(/needs --recycle/);
  });
});
