/** llama.cpp native (CPU build) through node-llama-cpp 3.22.1 from tools/peers, one thread, greedy. */
import { loadedCpuVariants } from './llama-cpp-build.js';
import { PEERS_NODE_MODULES } from './peers.js';
import { Stopwatch, type DecodeResult, type Engine } from './types.js';

type NodeLlamaCpp = typeof import('../../tools/peers/node_modules/node-llama-cpp/dist/index.js');
type Llama = Awaited<ReturnType<NodeLlamaCpp['getLlama']>>;
type LlamaModel = Awaited<ReturnType<Llama['loadModel']>>;
type LlamaContext = Awaited<ReturnType<LlamaModel['createContext']>>;

export class LlamaCppEngine implements Engine {
  readonly name = 'llama.cpp';
  /** The ggml CPU backend(s) this process loaded, e.g. ['zen4'] (see llama-cpp-build.ts). */
  cpuBuild: string[] = [];
  private llama: Llama | undefined;
  private model: LlamaModel | undefined;
  private context: LlamaContext | undefined;

  constructor(private readonly contextSize: number) {}

  get description(): string {
    return `node-llama-cpp 3.22.1 (llama.cpp native, CPU backend libggml-cpu-${this.cpuBuild.join('/') || '?'}.so), threads 1, flash attention off, f16 KV cache`;
  }

  async load(path: string): Promise<void> {
    const { getLlama, LlamaLogLevel } = (await import(`${PEERS_NODE_MODULES}node-llama-cpp/dist/index.js`)) as NodeLlamaCpp;
    this.llama = await getLlama({ gpu: false, logLevel: LlamaLogLevel.error, maxThreads: 1 });
    this.model = await this.llama.loadModel({ modelPath: path, gpuLayers: 0 });
    this.context = await this.model.createContext({ contextSize: this.contextSize, threads: 1, flashAttention: false, sequences: 1 });
    this.cpuBuild = loadedCpuVariants();
  }

  async decode(promptIds: number[], nTokens: number): Promise<DecodeResult> {
    if (!this.context) throw new Error('llama.cpp: load() a model first');
    const sequence = this.context.getSequence();
    try {
      const tokens: number[] = [];
      const watch = new Stopwatch();
      // evaluate() runs the prompt, then feeds back each picked token until we stop iterating;
      // yieldEogToken keeps it going through EOS so every engine produces the same count.
      for await (const token of sequence.evaluate(promptIds as never, { temperature: 0, yieldEogToken: true })) {
        if (tokens.length === 0) watch.mark();
        tokens.push(token as number);
        if (tokens.length === nTokens) break;
      }
      watch.mark();
      return watch.result(tokens);
    } finally {
      sequence.dispose();
    }
  }

  async dispose(): Promise<void> {
    await this.context?.dispose();
    await this.model?.dispose();
    await this.llama?.dispose();
    this.context = this.model = this.llama = undefined;
  }
}
