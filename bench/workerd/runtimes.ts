/**
 * Starts the bare-forward probe (probe-handler.mjs) in Node and in workerd, each with chosen V8 flags,
 * and measures every runtime from outside the same way: an HTTP request runs the work, and the CPU time
 * the serving process spent on it is read from /proc (all its threads, nanoseconds), so that other
 * jobs on a shared machine inflate the figures far less than they would the wall clock.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { processCpuMs } from './proc.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const WORKERD = join(ROOT, 'node_modules', 'workerd', 'bin', 'workerd');
/** Files the probe Worker is made of, by module name (= path from the repository root). */
const WORKER_MODULES = ['bench/workerd/probe-worker.mjs', 'bench/workerd/probe-handler.mjs', 'bench/forward/core.mjs', 'bench/forward/shapes.mjs'];
const ENGINE = 'sdk/wasm/recyclegpt.wasm';
/** As wrangler.toml. */
const COMPATIBILITY_DATE = '2025-09-01';

export interface Runtime {
  /** 'node' or 'workerd'. */
  kind: 'node' | 'workerd';
  /** V8 flags the process starts with. */
  flags: string[];
  /**
   * workerd only: its inspector listening, and a DevTools-protocol client attached that sends these
   * methods, as `wrangler dev`'s inspector proxy does (Runtime.enable, Network.enable).
   */
  inspector?: string[];
  /** workerd only: more `workerd serve` options (as `wrangler dev` passes --debug-port). */
  serveArgs?: string[];
}

export const runtimeName = (r: Runtime) =>
  [r.kind, ...r.flags, ...(r.serveArgs ?? []), ...(r.inspector ? [`+inspector[${r.inspector.join(',')}]`] : [])].join(' ');

export interface RunningProbe {
  runtime: Runtime;
  pid: number;
  /** Work done by one request: CPU ms of the serving process and wall ms measured inside it. */
  request(path: string): Promise<{ cpuMs: number; insideMs: number; memoryBytes: number }>;
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

/** A workerd config serving the probe Worker with `flags` (workerd refuses flags its V8 does not know). */
function workerdConfig(dir: string, port: number, flags: string[]): string {
  for (const file of [...WORKER_MODULES, ENGINE]) {
    mkdirSync(join(dir, dirname(file)), { recursive: true });
    copyFileSync(join(ROOT, file), join(dir, file));
  }
  const modules = [
    ...WORKER_MODULES.map((m) => `(name = "${m}", esModule = embed "${m}")`),
    `(name = "bench/workerd/recyclegpt.wasm", wasm = embed "${ENGINE}")`,
  ];
  const config = `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [(name = "probe", worker = .probe)],
  sockets = [(name = "http", address = "127.0.0.1:${port}", http = (), service = "probe")],
  v8Flags = [${flags.map((f) => JSON.stringify(f)).join(', ')}],
);
const probe :Workerd.Worker = (
  modules = [
    ${modules.join(',\n    ')}
  ],
  compatibilityDate = "${COMPATIBILITY_DATE}",
);
`;
  const path = join(dir, 'probe.capnp');
  writeFileSync(path, config);
  return path;
}

export async function startProbe(runtime: Runtime, scratchDir: string): Promise<RunningProbe> {
  const port = await freePort();
  let child: ChildProcess;
  if (runtime.kind === 'node') {
    child = spawn(process.execPath, [...runtime.flags, join(ROOT, 'bench/workerd/probe-node.mjs'), String(port)], { stdio: ['ignore', 'ignore', 'pipe'] });
  } else {
    const dir = join(scratchDir, `workerd-${port}`);
    const config = workerdConfig(dir, port, runtime.flags);
    const inspect = runtime.inspector ? [`--inspector-addr=127.0.0.1:${await freePort()}`] : [];
    child = spawn(WORKERD, ['serve', config, ...inspect, ...(runtime.serveArgs ?? [])], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  }
  let stderr = '';
  child.stderr!.on('data', (chunk) => (stderr += chunk));
  const base = `http://127.0.0.1:${port}`;
  const get = async (path: string) => {
    const response = await fetch(base + path);
    const body = (await response.json()) as { ms: number; memoryBytes: number; error?: string };
    if (!response.ok) throw new Error(`${runtimeName(runtime)} ${path}: ${body.error ?? response.status}`);
    return body;
  };
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`${runtimeName(runtime)} exited (${child.exitCode}): ${stderr}`);
    try {
      await get('/health');
      break;
    } catch (error) {
      if (i > 200) throw new Error(`${runtimeName(runtime)} did not answer on ${base}: ${String(error)} ${stderr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  const session = runtime.inspector && (await attachInspector(child, runtime.inspector));
  return {
    runtime,
    pid: child.pid!,
    async request(path) {
      const before = processCpuMs(child.pid!);
      const { ms, memoryBytes } = await get(path);
      return { cpuMs: processCpuMs(child.pid!) - before, insideMs: ms, memoryBytes };
    },
    async stop() {
      session?.close();
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

export interface ProbeFigures {
  runtime: string;
  /** ms per greedy decode step (CPU of the serving process), the best round. */
  decodeMs: number;
  /** Same, by the clock inside the runtime. */
  decodeInsideMs: number;
  /** Prompt tokens per second (CPU), the best round. */
  prefillTokensPerSecond: number;
  /** ms of one n-token pass (CPU), the best round, keyed by n. */
  passMs: Record<number, number>;
  memoryBytes: number;
}

export interface CompareOptions {
  shape: string;
  type: string;
  runtimes: Runtime[];
  rounds?: number;
  steps?: number;
  prefill?: number;
  sizes?: number[];
  passCount?: number;
  scratchDir: string;
  log?: (line: string) => void;
}

/**
 * Every runtime serves the same random model; the measurements are interleaved round by round (the
 * runtimes take turns) so that load from other jobs hits them alike, and each keeps its best round.
 */
export async function compareRuntimes(options: CompareOptions): Promise<ProbeFigures[]> {
  const { shape, type, rounds = 5, steps = 32, prefill = 512, sizes = [1, 2, 3, 4], passCount = 10, log = () => {} } = options;
  const probes: RunningProbe[] = [];
  try {
    for (const runtime of options.runtimes) {
      const probe = await startProbe(runtime, options.scratchDir);
      probes.push(probe);
      await probe.request(`/build?shape=${shape}&type=${type}&ctx=${Math.max(1024, prefill + 64)}`);
      // Warm-up: V8 compiles hot functions with Liftoff first and tiers them up to TurboFan as they run.
      for (let i = 0; i < 2; i++) await probe.request(`/decode?steps=${steps}`);
      if (prefill > 0) await probe.request(`/prefill?n=${prefill}`);
      log(`  ${runtimeName(runtime)}: ready`);
    }
    const best = probes.map(() => ({ decode: Infinity, decodeInside: Infinity, prefill: Infinity, pass: {} as Record<number, number>, memory: 0 }));
    for (let round = 0; round < rounds; round++) {
      for (let i = 0; i < probes.length; i++) {
        const k = (i + round) % probes.length; // rotate who goes first
        const probe = probes[k]!;
        const b = best[k]!;
        const decode = await probe.request(`/decode?steps=${steps}`);
        b.decode = Math.min(b.decode, decode.cpuMs / steps);
        b.decodeInside = Math.min(b.decodeInside, decode.insideMs / steps);
        if (prefill > 0) b.prefill = Math.min(b.prefill, (await probe.request(`/prefill?n=${prefill}`)).cpuMs);
        for (const n of sizes) b.pass[n] = Math.min(b.pass[n] ?? Infinity, (await probe.request(`/passes?n=${n}&count=${passCount}`)).cpuMs / passCount);
        b.memory = decode.memoryBytes;
      }
      log(`  round ${round + 1}/${rounds}: ${probes.map((p, k) => `${runtimeName(p.runtime)} ${best[k]!.decode.toFixed(2)} ms`).join(', ')}`);
    }
    return probes.map((probe, k) => ({
      runtime: runtimeName(probe.runtime),
      decodeMs: best[k]!.decode,
      decodeInsideMs: best[k]!.decodeInside,
      prefillTokensPerSecond: prefill > 0 ? (prefill * 1000) / best[k]!.prefill : 0,
      passMs: best[k]!.pass,
      memoryBytes: best[k]!.memory,
    }));
  } finally {
    for (const probe of probes) await probe.stop();
  }
}

/** Connects a DevTools-protocol client to workerd's inspector and sends `methods` (answers are not awaited). */
async function attachInspector(child: ChildProcess, methods: string[]): Promise<WebSocket> {
  if (typeof WebSocket === 'undefined') throw new Error('attaching an inspector needs a global WebSocket: on Node 20 run with NODE_OPTIONS=--experimental-websocket');
  const address = (child.spawnargs.find((a) => a.startsWith('--inspector-addr=')) ?? '').slice('--inspector-addr='.length);
  const targets = (await (await fetch(`http://${address}/json/list`)).json()) as Array<{ webSocketDebuggerUrl: string }>;
  const url = targets[0]?.webSocketDebuggerUrl;
  if (!url) throw new Error(`workerd's inspector at ${address} lists no worker`);
  const socket = new WebSocket(url);
  await new Promise((resolve, reject) => ((socket.onopen = resolve), (socket.onerror = reject)));
  methods.forEach((method, id) => socket.send(JSON.stringify({ id: id + 1, method })));
  return socket;
}
