import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';

/**
 * The Worker as Cloudflare receives it: `wrangler deploy --dry-run` bundles without uploading. No warning,
 * no node: import, no WebGPU code, under 3 MB gzipped (every byte is parsed at cold start), startup
 * measured by `wrangler check startup`. And the packages as a user gets them: packed with `npm pack`,
 * installed into a fresh project that builds a Worker from the tarballs alone.
 */
const root = fileURLToPath(new URL('../../', import.meta.url));
const wrangler = join(root, 'node_modules', 'wrangler', 'bin', 'wrangler.js');
const offline = { ...process.env, WRANGLER_SEND_METRICS: 'false', WRANGLER_SEND_ERROR_REPORTS: 'false', CLOUDFLARE_CF_FETCH_ENABLED: 'false', NO_COLOR: '1' };
const MAX_GZIP_BYTES = 3 * 2 ** 20;
const artifacts = fileURLToPath(new URL('../test-artifacts/', import.meta.url));
const figures: Record<string, number> = {};
const scratch = mkdtempSync(join(tmpdir(), 'recyclegpt-bundle-'));

afterAll(() => {
  rmSync(scratch, { recursive: true, force: true });
  mkdirSync(artifacts, { recursive: true });
  writeFileSync(join(artifacts, 'bundle.json'), `${JSON.stringify(figures, null, 2)}\n`);
  console.log('bundle', figures);
});

/** `wrangler deploy --dry-run --outdir` in `cwd`: the output, and the bundle's files. */
function dryRun(cwd: string, outdir: string): { log: string; files: Map<string, Buffer> } {
  const run = spawnSync(process.execPath, [wrangler, 'deploy', '--dry-run', '--outdir', outdir], { cwd, env: offline, encoding: 'utf8' });
  const log = `${run.stdout}${run.stderr}`;
  if (run.status !== 0) throw new Error(`wrangler deploy --dry-run failed:\n${log}`);
  const files = new Map(readdirSync(outdir).filter((f) => !f.endsWith('.map') && f !== 'README.md').map((f) => [f, readFileSync(join(outdir, f))] as const));
  return { log, files };
}

function checkBundle({ log, files }: ReturnType<typeof dryRun>): number {
  expect(log, 'wrangler warned').not.toMatch(/WARNING|▲/);
  const script = [...files].filter(([name]) => name.endsWith('.js')).map(([, bytes]) => bytes.toString('utf8')).join('\n');
  expect(script).not.toMatch(/["']node:/);
  // The kernels package's code and its WGSL.
  expect(script).not.toMatch(/WebGPUModel|@workgroup_size|createComputePipeline/);
  // Both engine modules, named by wrangler <content hash>-<file>.
  const wasm = [...files.keys()].filter((f) => f.endsWith('.wasm')).map((f) => f.replace(/^[0-9a-f]+-/, ''));
  expect(wasm.sort(), 'the engine\'s two modules are bundled').toEqual(['recyclegpt-relaxed.wasm', 'recyclegpt.wasm']);
  const gzipped = [...files.values()].reduce((sum, bytes) => sum + gzipSync(bytes, { level: 9 }).length, 0);
  expect(gzipped).toBeLessThan(MAX_GZIP_BYTES);
  return gzipped;
}

describe('the Worker bundle', () => {
  it('has no warning, no node: import, no WebGPU code, and is under 3 MB gzipped', () => {
    figures.bundleGzipBytes = checkBundle(dryRun(root, join(scratch, 'dry')));
  });

  it('starts well within the 1 s startup limit (wrangler check startup)', () => {
    const profile = join(scratch, 'startup.cpuprofile');
    const run = spawnSync(process.execPath, [wrangler, 'check', 'startup', '--outfile', profile], { cwd: root, env: offline, encoding: 'utf8' });
    expect(run.status, `${run.stdout}${run.stderr}`).toBe(0);
    const { nodes, samples, timeDeltas } = JSON.parse(readFileSync(profile, 'utf8')) as {
      nodes: { id: number; callFrame: { functionName: string } }[];
      samples: number[];
      timeDeltas: number[];
    };
    const idle = new Set(nodes.filter((n) => ['(idle)', '(program)', '(root)'].includes(n.callFrame.functionName)).map((n) => n.id));
    const busyMicros = samples.reduce((sum, node, i) => sum + (idle.has(node) ? 0 : timeDeltas[i + 1] ?? 0), 0);
    figures.startupCpuMs = Math.round(busyMicros / 100) / 10;
    expect(busyMicros / 1000).toBeLessThan(1000);
  });
});

describe('the packages from their tarballs', () => {
  it('install into a fresh project, whose Worker builds with wrangler as the README shows', () => {
    const packs = join(scratch, 'packs');
    mkdirSync(packs);
    const tarballs = ['@recyclegpt/kernels', 'recyclegpt', '@recyclegpt/workers'].map((workspace) => {
      const out = execFileSync('npm', ['pack', '-w', workspace, '--pack-destination', packs, '--json'], { cwd: root, encoding: 'utf8' });
      return join(packs, (JSON.parse(out) as { filename: string }[])[0].filename);
    });
    const project = join(scratch, 'my-worker');
    mkdirSync(join(project, 'src'), { recursive: true });
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'my-worker', private: true, type: 'module' }));
    // Only registry packages besides the tarballs (hono, valibot); the npm cache has them after `npm ci`.
    execFileSync('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', ...tarballs], { cwd: project, encoding: 'utf8', stdio: 'pipe' });
    writeFileSync(join(project, 'src', 'index.ts'), readmeWorker());
    writeFileSync(
      join(project, 'wrangler.toml'),
      ['name = "my-worker"', 'main = "src/index.ts"', 'compatibility_date = "2025-09-01"', 'compatibility_flags = ["enable_request_signal"]', '', '[[r2_buckets]]', 'binding = "MODELS"', 'bucket_name = "models"', ''].join('\n'),
    );
    figures.userBundleGzipBytes = checkBundle(dryRun(project, join(scratch, 'user-dry')));
  });
});

/** The Worker of workers/README.md's "Your own Worker" section, read from the README itself. */
function readmeWorker(): string {
  const readme = readFileSync(join(root, 'workers', 'README.md'), 'utf8');
  const code = /## Your own Worker[\s\S]*?```ts\n([\s\S]*?)```/.exec(readme);
  if (!code) throw new Error('workers/README.md has no "Your own Worker" section with a ts block');
  return code[1];
}
