import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const startScript = fileURLToPath(new URL('../scripts/start.mjs', import.meta.url));
const root = fileURLToPath(new URL('../../', import.meta.url));
const wrangler = join(root, 'node_modules', 'wrangler', 'bin', 'wrangler.js');
const offline = { ...process.env, WRANGLER_SEND_METRICS: 'false', WRANGLER_SEND_ERROR_REPORTS: 'false', CLOUDFLARE_CF_FETCH_ENABLED: 'false' };

/** Debian's chromium, headless and quiet (no network of its own). */
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

export interface DevServer {
  url: string;
  process: ChildProcess;
  /** Milliseconds from spawn until /healthz answered. */
  readyMs: number;
  /** Resident memory of the workerd processes serving the Worker, in MiB. */
  workerdRssMiB(): number;
  /** CPU seconds the workerd processes have used so far (user + system). */
  workerdCpuSeconds(): number;
  /** The output of wrangler so far. */
  log(): string;
  /**
   * Replaces an object in the server's local R2 bucket, as `wrangler r2 object put --local` does. Asynchronous on
   * purpose: a synchronous child process stops this process's event loop for seconds, the server closes the idle
   * keep-alive sockets meanwhile, and the next fetch, not having seen the close, fails with "other side closed".
   */
  putObject(key: string, file: string): Promise<void>;
  stop(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

/** Every process below `pid`, read from /proc (Linux). */
function descendants(pid: number): number[] {
  const parents = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // Field 4 of /proc/<pid>/stat is the parent; the command name (field 2) may contain spaces, so split after ')'.
      const ppid = Number(readFileSync(`/proc/${entry}/stat`, 'utf8').split(') ')[1].split(' ')[1]);
      parents.set(ppid, [...(parents.get(ppid) ?? []), Number(entry)]);
    } catch {
      // The process ended while we looked.
    }
  }
  const found: number[] = [];
  const walk = (p: number) => (parents.get(p) ?? []).forEach((c) => (found.push(c), walk(c)));
  walk(pid);
  return found;
}

function workerd(root: number): number[] {
  return descendants(root).filter((p) => {
    try {
      return readFileSync(`/proc/${p}/comm`, 'utf8').trim() === 'workerd';
    } catch {
      return false;
    }
  });
}

/** utime + stime of a process, fields 14 and 15 of /proc/<pid>/stat, in clock ticks (100 a second on Linux). */
function cpuSeconds(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}

function rssMiB(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'));
  return line ? Number(line.split(/\s+/)[1]) / 1024 : 0;
}

/** Runs `npm start`'s script (without the build) on a free port and waits until the Worker answers. */
export async function startDevServer(options: { model?: string; persistTo: string; vars?: Record<string, string> }): Promise<DevServer> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const vars = Object.entries(options.vars ?? {}).flatMap(([name, value]) => ['--var', `${name}:${value}`]);
  const args = [startScript, '--skip-build', '--port', String(port), '--persist-to', options.persistTo, ...(options.model ? ['--model', options.model] : []), ...vars];
  const started = performance.now();
  const child = spawn(process.execPath, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: offline });
  let log = '';
  child.stdout!.on('data', (d) => (log += d));
  child.stderr!.on('data', (d) => (log += d));
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the dev server exited early:\n${log}`);
    if (performance.now() - started > 120_000) throw new Error(`the dev server did not answer within 120 s:\n${log}`);
    const ok = await fetch(`${url}/healthz`).then((r) => r.ok, () => false);
    if (ok) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  return {
    url,
    process: child,
    readyMs: performance.now() - started,
    workerdRssMiB: () => workerd(child.pid!).reduce((sum, p) => sum + rssMiB(p), 0),
    workerdCpuSeconds: () => workerd(child.pid!).reduce((sum, p) => sum + cpuSeconds(p), 0),
    log: () => log,
    async putObject(key, file) {
      const put = spawn(process.execPath, [wrangler, 'r2', 'object', 'put', `recyclegpt-models/${key}`, '--file', file, '--local', '--persist-to', options.persistTo], { cwd: root, env: offline });
      let output = '';
      put.stdout.on('data', (d) => (output += d));
      put.stderr.on('data', (d) => (output += d));
      const status = await new Promise<number | null>((resolve) => put.on('exit', resolve));
      if (status !== 0) throw new Error(`wrangler r2 object put failed:\n${output}`);
    },
    async stop() {
      if (child.exitCode === null) process.kill(-child.pid!, 'SIGTERM');
      await exited;
    },
  };
}
