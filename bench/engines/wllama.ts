/**
 * llama.cpp compiled to WebAssembly: @wllama/wllama 2.3.7 from tools/peers, single-thread build,
 * run in Node behind a Web Worker shim. The decode loop mirrors wllama's own createCompletion
 * (sample → accept → decode one token), minus its EOS check.
 */
import { readFile } from 'node:fs/promises';
import { PEERS_NODE_MODULES } from './peers.js';
import { Stopwatch, type DecodeResult, type Engine } from './types.js';
import { installWebWorkerShim } from './web-worker-shim.js';

// Typed from its wllama.d.ts: the package's index.d.ts re-exports without file extensions, which NodeNext cannot follow.
type WllamaModule = typeof import('../../tools/peers/node_modules/@wllama/wllama/esm/wllama.js');
type Wllama = InstanceType<WllamaModule['Wllama']>;

const WLLAMA_ESM = `${PEERS_NODE_MODULES}@wllama/wllama/esm/`;
const quiet = { debug() {}, log() {}, warn() {}, error: console.error };

export class WllamaEngine implements Engine {
  readonly name = 'wllama';
  readonly description = '@wllama/wllama 2.3.7 (llama.cpp → WASM), single-thread build, n_threads 1, in Node via a worker_threads shim';
  private wllama: Wllama | undefined;

  constructor(private readonly contextSize: number) {}

  async load(path: string): Promise<void> {
    installWebWorkerShim(WLLAMA_ESM);
    const { Wllama } = (await import(`${WLLAMA_ESM}index.js`)) as WllamaModule;
    this.wllama = new Wllama({ 'single-thread/wllama.wasm': 'single-thread/wllama.wasm' }, { suppressNativeLog: true, logger: quiet });
    const bytes = await readFile(path);
    await this.wllama.loadModel([new Blob([bytes])], { n_ctx: this.contextSize, n_threads: 1, flash_attn: false, seed: 1 });
  }

  async decode(promptIds: number[], nTokens: number): Promise<DecodeResult> {
    const wllama = this.wllama;
    if (!wllama) throw new Error('wllama: load() a model first');
    await wllama.kvClear();
    await wllama.samplingInit({ temp: 0, top_k: 1 });
    await wllama.samplingAccept(promptIds);
    const tokens: number[] = [];
    const watch = new Stopwatch();
    await wllama.decode(promptIds, {});
    for (;;) {
      const { token } = await wllama.samplingSample();
      if (tokens.length === 0) watch.mark();
      tokens.push(token);
      if (tokens.length === nTokens) break;
      await wllama.samplingAccept([token]);
      await wllama.decode([token], {});
    }
    watch.mark();
    return watch.result(tokens);
  }

  async dispose(): Promise<void> {
    await this.wllama?.exit();
    this.wllama = undefined;
  }
}
