/**
 * Runs a Worker bundle in workerd through the Miniflare API (what `wrangler dev` runs, without its
 * inspector or file watching), with the MODELS bucket in local R2, and finds the workerd process so
 * that its CPU time and memory can be read from /proc.
 *  - the benchmark's Worker (sdk-worker.ts): the SDK alone, bundled with esbuild;
 *  - the product's Worker (workers/src/worker.ts): bundled by `wrangler deploy --dry-run`, as deployed.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { Miniflare } from 'miniflare';
import { peakRssMiB, processCpuMs, workerdBelow } from './proc.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BUCKET = 'recyclegpt-models';
/** As wrangler.toml. */
const COMPATIBILITY_DATE = '2025-09-01';
const COMPATIBILITY_FLAGS = ['enable_request_signal'];
const OFFLINE = { WRANGLER_SEND_METRICS: 'false', WRANGLER_SEND_ERROR_REPORTS: 'false', CLOUDFLARE_CF_FETCH_ENABLED: 'false' };

/** Bundles sdk-worker.ts into `outDir` (the engine stays a separate .wasm module); returns the script path. */
export async function bundleBenchWorker(outDir: string): Promise<string> {
  await build({
    entryPoints: [join(ROOT, 'bench/workerd/sdk-worker.ts')],
    outdir: outDir,
    bundle: true,
    format: 'esm',
    platform: 'neutral',
    conditions: ['workerd', 'worker', 'browser'],
    mainFields: ['module', 'main'],
    loader: { '.wasm': 'copy' },
    external: ['cloudflare:*'],
    logLevel: 'error',
  });
  return join(outDir, 'sdk-worker.js');
}

/** The product's Worker as `wrangler deploy` would upload it; returns the script path. */
export function bundleProductWorker(outDir: string): string {
  const wrangler = join(ROOT, 'node_modules', 'wrangler', 'bin', 'wrangler.js');
  const result = spawnSync(process.execPath, [wrangler, 'deploy', '--dry-run', '--outdir', outDir], { cwd: ROOT, env: { ...process.env, ...OFFLINE }, encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`wrangler deploy --dry-run failed: ${result.stderr}`);
  return join(outDir, 'worker.js');
}

export interface RunningWorker {
  url: string;
  /** The workerd process serving it. */
  pid: number;
  /** Puts a file into the MODELS bucket under `key`. */
  upload(key: string, path: string): Promise<void>;
  /** CPU ms that workerd spent so far (every thread). */
  cpuMs(): number;
  /** Peak resident memory of the workerd process, MiB (VmHWM). */
  peakRssMiB(): number;
  dispose(): Promise<void>;
}

export async function startWorker(options: { scriptPath: string; persistDir: string; bindings?: Record<string, string> }): Promise<RunningWorker> {
  mkdirSync(options.persistDir, { recursive: true });
  const running = new Set(workerdBelow(process.pid));
  const mf = new Miniflare({
    // The bundle's files listed, not discovered: discovery would also chase the SDK's dynamic
    // import('node:fs/promises'), which only its Node file loader reaches.
    modulesRoot: dirname(options.scriptPath),
    modules: [
      { type: 'ESModule', path: options.scriptPath },
      ...readdirSync(dirname(options.scriptPath))
        .filter((f) => f.endsWith('.wasm'))
        .map((f) => ({ type: 'CompiledWasm' as const, path: join(dirname(options.scriptPath), f) })),
    ],
    compatibilityDate: COMPATIBILITY_DATE,
    compatibilityFlags: COMPATIBILITY_FLAGS,
    r2Buckets: { MODELS: BUCKET },
    r2Persist: join(options.persistDir, 'v3', 'r2'), // where `wrangler … --persist-to` keeps R2
    bindings: options.bindings,
  });
  const url = (await mf.ready).toString().replace(/\/$/, '');
  const pids = workerdBelow(process.pid).filter((p) => !running.has(p));
  if (pids.length !== 1) throw new Error(`expected one new workerd process below this one, found ${pids.length}`);
  const pid = pids[0]!;
  return {
    url,
    pid,
    async upload(key, path) {
      const bucket = await mf.getR2Bucket('MODELS');
      const existing = await bucket.head(key);
      if (existing && existing.size === statSync(path).size) return; // persisted from an earlier run
      // As `npm start` does it (Miniflare's own proxy wants the whole file in one message).
      const wrangler = join(ROOT, 'node_modules', 'wrangler', 'bin', 'wrangler.js');
      const args = [wrangler, 'r2', 'object', 'put', `${BUCKET}/${key}`, '--file', path, '--local', '--persist-to', options.persistDir];
      const result = spawnSync(process.execPath, args, { cwd: ROOT, env: { ...process.env, ...OFFLINE }, encoding: 'utf8' });
      if (result.status !== 0) throw new Error(`wrangler r2 object put failed: ${result.stderr}`);
    },
    cpuMs: () => processCpuMs(pid),
    peakRssMiB: () => peakRssMiB(pid),
    dispose: () => mf.dispose(),
  };
}
