/**
 * Serves one of two apps in Node and in workerd, each with chosen V8 flags, and measures every runtime from
 * outside the same way: an HTTP request runs the work, and the CPU time the serving process spent on it is
 * read from /proc (all its threads, nanoseconds), which other jobs on a shared machine inflate far less
 * than the wall clock. Runtimes take turns round by round, and each keeps its best round.
 *  - `probe`: the bare engine on random weights written into its memory (probe-handler.mjs, no SDK);
 *  - `sdk`: the SDK's loadModel → generate on a bench GGUF (sdk-handler.ts), as the product runs it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ENGINE_FILES, type EngineModules } from '../../sdk/src/binding.js';
import { KERNEL_SETS, type KernelSet } from '../../sdk/src/contract/modes.js';
import { bundleBenchWorker } from './miniflare.js';
import { Cdp } from './cdp.js';
import { callJson } from './http.js';
import { processCpuMs } from './proc.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const WORKERD = join(ROOT, 'node_modules', 'workerd', 'bin', 'workerd');
/** Files the probe Worker is made of, by module name (= path from the repository root). */
const PROBE_MODULES = ['bench/workerd/probe-worker.mjs', 'bench/workerd/probe-handler.mjs', 'bench/forward/core.mjs', 'bench/forward/shapes.mjs'];
/** An engine module by its kernels, from the repository root: the SDK names the files (sdk/wasm/). */
const enginePath = (kernels: EngineModule) => `sdk/wasm/${ENGINE_FILES[kernels]}`;
/** As wrangler.toml. */
const COMPATIBILITY_DATE = '2025-09-01';

export type App = 'probe' | 'sdk';
/** The engine's modules, by their kernels. */
export type EngineModule = keyof EngineModules;

export interface Runtime {
  kind: 'node' | 'workerd';
  /** V8 flags the process starts with. */
  flags: string[];
  /**
   * The runtime's inspector listening and a DevTools-protocol client attached that sends these methods
   * (e.g. Runtime.enable, Network.enable, as `wrangler dev`'s inspector proxy does; Debugger.enable, as DevTools does).
   */
  inspector?: string[];
  /** workerd only: more `workerd serve` options (as `wrangler dev` passes --debug-port). */
  serveArgs?: string[];
  /**
   * The engine module: the probe serves recyclegpt.wasm ('simd128') unless this says 'relaxed'; the SDK app runs this
   * one as `LoadOptions.kernels` (default: the SDK's own choice, relaxed where the runtime computes it exactly).
   */
  engine?: EngineModule;
}

export const runtimeName = (r: Runtime) =>
  [r.kind, ...r.flags, ...(r.serveArgs ?? []), ...(r.inspector ? [`+inspector[${r.inspector.join(',')}]`] : []), ...(r.engine ? [`+engine=${r.engine}`] : [])].join(' ');

export interface Served {
  runtime: Runtime;
  pid: number;
  /** The attached inspector client, when the runtime asked for one. */
  cdp?: Cdp;
  /** One request: CPU ms the serving process spent on it, and its JSON answer. */
  request<T>(path: string, body?: unknown): Promise<{ cpuMs: number; answer: T }>;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** A workerd config serving `modules` (the first is the main one) with `flags` (workerd refuses flags its V8 does not know). */
function workerdConfig(dir: string, port: number, flags: string[], modules: string[], modelDir?: string): string {
  const files = modelDir ? `,\n    (name = "files", disk = (path = ${JSON.stringify(modelDir)}, writable = false))` : '';
  const bindings = modelDir ? '\n  bindings = [(name = "MODEL_FILES", service = "files")],' : '';
  const config = `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [
    (name = "app", worker = .app)${files}
  ],
  sockets = [(name = "http", address = "127.0.0.1:${port}", http = (), service = "app")],
  v8Flags = [${flags.map((f) => JSON.stringify(f)).join(', ')}],
);
const app :Workerd.Worker = (
  modules = [
    ${modules.join(',\n    ')}
  ],${bindings}
  compatibilityDate = "${COMPATIBILITY_DATE}",
);
`;
  const path = join(dir, 'app.capnp');
  writeFileSync(path, config);
  return path;
}

/** The probe's files copied under `dir`, as workerd module declarations; `engine` is the module it imports. */
function probeModules(dir: string, engine: EngineModule): string[] {
  const wasm = enginePath(engine);
  for (const file of [...PROBE_MODULES, wasm]) {
    mkdirSync(join(dir, dirname(file)), { recursive: true });
    copyFileSync(join(ROOT, file), join(dir, file));
  }
  return [...PROBE_MODULES.map((m) => `(name = "${m}", esModule = embed "${m}")`), `(name = "bench/workerd/recyclegpt.wasm", wasm = embed "${wasm}")`];
}

/** The SDK Worker bundled into `dir`, as workerd module declarations. */
async function sdkModules(dir: string): Promise<string[]> {
  const main = await bundleBenchWorker(dir);
  const wasm = readdirSync(dir).filter((f) => f.endsWith('.wasm'));
  return [`(name = "${basename(main)}", esModule = embed "${basename(main)}")`, ...wasm.map((f) => `(name = "${f}", wasm = embed "${f}")`)];
}

export async function serve(runtime: Runtime, app: App, scratchDir: string, modelDir?: string): Promise<Served> {
  const port = await freePort();
  let child: ChildProcess;
  const inspectorAddress = runtime.inspector ? `127.0.0.1:${await freePort()}` : undefined;
  if (runtime.kind === 'node') {
    const script =
      app === 'probe'
        ? [join(ROOT, 'bench/workerd/probe-node.mjs'), String(port), join(ROOT, enginePath(runtime.engine ?? 'simd128'))]
        : ['--import', 'tsx', join(ROOT, 'bench/workerd/sdk-node.ts'), String(port), modelDir!];
    const inspect = inspectorAddress ? [`--inspect=${inspectorAddress}`] : [];
    child = spawn(process.execPath, [...runtime.flags, ...inspect, ...script], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
  } else {
    const dir = join(scratchDir, `${app}-${port}`);
    mkdirSync(dir, { recursive: true });
    const modules = app === 'probe' ? probeModules(dir, runtime.engine ?? 'simd128') : await sdkModules(dir);
    const config = workerdConfig(dir, port, runtime.flags, modules, app === 'sdk' ? modelDir : undefined);
    const inspect = inspectorAddress ? [`--inspector-addr=${inspectorAddress}`] : [];
    child = spawn(WORKERD, ['serve', '--verbose', config, ...inspect, ...(runtime.serveArgs ?? [])], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (chunk) => (stderr += chunk));
  }
  let stderr = '';
  child.stderr!.on('data', (chunk) => (stderr += chunk));
  const call = <T>(path: string, body?: unknown): Promise<T> =>
    callJson<T>(`http://127.0.0.1:${port}`, path, body).catch((error: Error) => {
      throw new Error(`${runtimeName(runtime)}: ${error.message}; its output: ${stderr.slice(-2000)}`);
    });
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`${runtimeName(runtime)} exited (${child.exitCode}): ${stderr}`);
    try {
      await call('/health');
      break;
    } catch (error) {
      if (i > 400) throw new Error(`${runtimeName(runtime)} did not answer on port ${port}: ${String(error)} ${stderr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  const cdp = inspectorAddress ? await Cdp.connect(inspectorAddress) : undefined;
  // Sent, not awaited: wrangler's proxy does not wait either, and a method may answer only later.
  for (const method of runtime.inspector ?? []) void cdp!.send(method).catch(() => undefined);
  return {
    runtime,
    pid: child.pid!,
    cdp,
    async request<T>(path: string, body?: unknown) {
      const before = processCpuMs(child.pid!);
      const answer = await call<T>(path, body);
      return { cpuMs: processCpuMs(child.pid!) - before, answer };
    },
    async stop() {
      cdp?.close();
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

export interface RuntimeFigures {
  runtime: string;
  /** ms per greedy decode step (CPU of the serving process), the best round. */
  decodeMs: number;
  /** Same, by the clock inside the runtime (workerd's ticks in whole milliseconds). */
  decodeInsideMs: number;
  /** Prompt tokens per second (CPU), the best round; 0 when not measured. */
  prefillTokensPerSecond: number;
  /** probe only: ms of one n-token pass (CPU), the best round, keyed by n. */
  passMs: Record<number, number>;
  /** probe only: whether the runtime validates relaxed SIMD's 8-bit dot product. */
  relaxedSimd?: boolean;
  /** The engine module's kernels that ran; 'relaxed (inexact here)' where the runtime computes them wrong (rg_relaxed_ok). */
  kernels?: string;
}

export interface CompareOptions {
  app: App;
  shape: string;
  type: string;
  runtimes: Runtime[];
  rounds?: number;
  steps?: number;
  prefill?: number;
  /** probe only: n-token passes to time. */
  sizes?: number[];
  /** probe only: the position decode steps start at (attention's share grows with it). */
  from?: number;
  scratchDir: string;
  /** sdk only: the model (a bench GGUF) and the decode prompt. */
  modelPath?: string;
  promptIds?: number[];
  log?: (line: string) => void;
}

/** One app's workload on one served runtime: set up once, then measured round by round. */
interface Subject {
  served: Served;
  best: RuntimeFigures;
  /** Runs the workload once; its figures count only when `record`. */
  round(record: boolean): Promise<void>;
}

const unmeasured = (served: Served): RuntimeFigures => ({ runtime: runtimeName(served.runtime), decodeMs: Infinity, decodeInsideMs: Infinity, prefillTokensPerSecond: 0, passMs: {} });

function probeSubject(served: Served, o: Required<Pick<CompareOptions, 'steps' | 'prefill' | 'sizes' | 'from'>>): Subject {
  const best = unmeasured(served);
  const passCount = 10;
  return {
    served,
    best,
    async round(record) {
      const decode = await served.request<{ ms: number }>(`/decode?steps=${o.steps}&from=${o.from}`);
      if (!record) return;
      best.decodeMs = Math.min(best.decodeMs, decode.cpuMs / o.steps);
      best.decodeInsideMs = Math.min(best.decodeInsideMs, decode.answer.ms / o.steps);
      if (o.prefill > 0) best.prefillTokensPerSecond = Math.max(best.prefillTokensPerSecond, (o.prefill * 1000) / (await served.request(`/prefill?n=${o.prefill}`)).cpuMs);
      for (const n of o.sizes) best.passMs[n] = Math.min(best.passMs[n] ?? Infinity, (await served.request(`/passes?n=${n}&count=${passCount}`)).cpuMs / passCount);
    },
  };
}

function sdkSubject(served: Served, o: Required<Pick<CompareOptions, 'steps' | 'prefill' | 'promptIds'>>): Subject {
  const best = unmeasured(served);
  const long = Array.from({ length: o.prefill }, (_, i) => o.promptIds[i % o.promptIds.length]!);
  const run = (promptIds: number[], maxTokens: number) => served.request<{ decodeMs: number }>('/run', { promptIds, maxTokens });
  // Decode steps only: the same prompt with 1 token and with steps + 1 tokens, the best of each, by difference
  // (the best of the differences would favour rounds where the 1-token request happened to be slow).
  let one = Infinity;
  let many = Infinity;
  return {
    served,
    best,
    async round(record) {
      const a = await run(o.promptIds, 1);
      const b = await run(o.promptIds, o.steps + 1);
      if (!record) return;
      one = Math.min(one, a.cpuMs);
      many = Math.min(many, b.cpuMs);
      best.decodeMs = (many - one) / o.steps;
      best.decodeInsideMs = Math.min(best.decodeInsideMs, b.answer.decodeMs / o.steps);
      if (o.prefill > 0) best.prefillTokensPerSecond = Math.max(best.prefillTokensPerSecond, (o.prefill * 1000) / (await run(long, 1)).cpuMs);
    },
  };
}

/** The kernels a probe ran, marked where the runtime computes relaxed SIMD wrong (its figures then time wrong sums). */
const kernelsRan = (set: KernelSet, relaxedOk: boolean) => (set === 'relaxed' && !relaxedOk ? 'relaxed (inexact here)' : set);

export async function compareRuntimes(options: CompareOptions): Promise<RuntimeFigures[]> {
  const { app, shape, type, rounds = 5, steps = 32, prefill = 256, sizes = [1, 2, 4], from = 0, log = () => {} } = options;
  const subjects: Subject[] = [];
  try {
    for (const runtime of options.runtimes) {
      const modelDir = options.modelPath ? dirname(options.modelPath) : undefined;
      const served = await serve(runtime, app, options.scratchDir, modelDir);
      let subject: Subject;
      if (app === 'probe') {
        subjects.push((subject = probeSubject(served, { steps, prefill, sizes, from })));
        const features = (await served.request<{ relaxedSimd: boolean; kernelSet: number; relaxedOk: boolean }>('/features')).answer;
        subject.best.relaxedSimd = features.relaxedSimd;
        subject.best.kernels = kernelsRan(KERNEL_SETS[features.kernelSet] ?? 'scalar', features.relaxedOk);
        await served.request(`/build?shape=${shape}&type=${type}&ctx=${Math.max(1024, prefill + 64, from + steps)}`);
      } else {
        subjects.push((subject = sdkSubject(served, { steps, prefill, promptIds: options.promptIds! })));
        const contextLength = Math.max(1024, prefill + steps + options.promptIds!.length);
        const loaded = await served.request<{ kernels: KernelSet }>('/load', { key: basename(options.modelPath!), contextLength, kernels: runtime.engine });
        subject.best.kernels = loaded.answer.kernels;
      }
      // Warm-up: V8 compiles hot functions with Liftoff first and tiers them up to TurboFan as they run.
      await subject.round(false);
      log(`  ${runtimeName(runtime)}: ready`);
    }
    for (let round = 0; round < rounds; round++) {
      for (let i = 0; i < subjects.length; i++) await subjects[(i + round) % subjects.length]!.round(true); // rotate who goes first
      log(`  round ${round + 1}/${rounds}: ${subjects.map((s) => `${s.best.runtime} ${s.best.decodeMs.toFixed(2)} ms`).join(', ')}`);
    }
    return subjects.map((s) => s.best);
  } finally {
    for (const s of subjects) await s.served.stop();
  }
}
