/**
 * Just enough of a browser for @wllama/wllama to run in Node: a Web Worker-like class over
 * worker_threads, plus the `navigator` and `document.baseURI` it reads. wllama builds its worker from
 * a Blob URL holding classic worker code (top-level `onmessage = …`, global `postMessage`), so the
 * shim resolves that URL and evaluates the code in a worker thread behind a small prelude.
 * Inside that thread Emscripten sees Node and reads the wasm file with `fs` (file: URL from baseURI).
 */
import { resolveObjectURL } from 'node:buffer';
import { Worker as ThreadWorker } from 'node:worker_threads';

/** Wires the worker code's globals to the thread's port. */
const PRELUDE = `
const { parentPort } = require('node:worker_threads');
globalThis.postMessage = (data, transfer) => parentPort.postMessage(data, transfer);
parentPort.on('message', (data) => globalThis.onmessage?.({ data }));
`;

type Transfer = readonly Transferable[] | { transfer?: readonly Transferable[] } | undefined;

class NodeWebWorker {
  onmessage: ((event: { data: unknown }) => void) | null = null;
  onerror: ((error: unknown) => void) | null = null;
  private thread: ThreadWorker | undefined;
  /** Messages posted while the worker code (a Blob, read asynchronously) is not running yet. */
  private pending: Array<[unknown, Transfer]> = [];
  private terminated = false;

  constructor(url: string | URL) {
    const blob = resolveObjectURL(String(url));
    if (!blob) throw new Error(`web worker shim: cannot resolve ${String(url)}; only Blob URLs are supported`);
    void blob.text().then((code) => this.start(code), (error) => this.onerror?.(error));
  }

  postMessage(data: unknown, transfer?: Transfer): void {
    if (this.thread) this.thread.postMessage(data, transferList(transfer) as never);
    else this.pending.push([data, transfer]);
  }

  terminate(): void {
    this.terminated = true;
    void this.thread?.terminate();
  }

  private start(code: string): void {
    if (this.terminated) return;
    const thread = new ThreadWorker(`${PRELUDE}\n${code}`, { eval: true });
    thread.on('message', (data) => this.onmessage?.({ data }));
    thread.on('error', (error) => this.onerror?.(error));
    this.thread = thread;
    for (const [data, transfer] of this.pending) this.postMessage(data, transfer);
    this.pending = [];
  }
}

function transferList(transfer: Transfer): readonly Transferable[] {
  if (!transfer) return [];
  return Array.isArray(transfer) ? transfer : ((transfer as { transfer?: readonly Transferable[] }).transfer ?? []);
}

/** Installs the browser globals wllama needs, where they are missing. `baseURI` resolves its asset paths. */
export function installWebWorkerShim(baseURI: string): void {
  const g = globalThis as Record<string, unknown>;
  g.Worker ??= NodeWebWorker;
  g.navigator ??= { userAgent: `Node.js ${process.version}`, hardwareConcurrency: 1 };
  g.document ??= { baseURI };
}
