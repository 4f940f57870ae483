/** Our engine through the SDK's public API: loadModel → generate (greedy) → stats. */
import { loadModel, type Model } from '../../sdk/src/node.js';
import { Stopwatch, type DecodeResult, type Engine } from './types.js';

export class OursEngine implements Engine {
  readonly name = 'ours';
  private model: Model | undefined;
  /** The engine module's kernels the SDK chose (SIMD128 on Node 20), once loaded. */
  private kernels: string | undefined;

  constructor(private readonly contextLength: number) {}

  get description(): string {
    return `RecycleGPT SDK, WASM ${this.kernels ?? '?'} kernels, single thread, plain decoding`;
  }

  async load(path: string): Promise<void> {
    this.model = await loadModel(path, { contextLength: this.contextLength });
    this.kernels = this.model.info.kernels;
  }

  async decode(promptIds: number[], nTokens: number): Promise<DecodeResult> {
    const model = this.loaded();
    await this.forgetCachedPrompt(model, promptIds);
    const watch = new Stopwatch();
    const stream = model.generate(promptIds, { maxTokens: nTokens, temperature: 0 });
    const tokens: number[] = [];
    for await (const token of stream) {
      if (tokens.length === 0) watch.mark();
      tokens.push(token.id);
    }
    watch.mark();
    const stats = await stream.stats;
    // The SDK stops at end-of-generation; the benchmark needs the full count to compare like with like.
    if (tokens.length !== nTokens) {
      throw new Error(`ours generated ${tokens.length} of ${nTokens} tokens (finish: ${stats.finishReason}); pick a prompt whose greedy continuation does not reach EOS`);
    }
    return watch.result(tokens);
  }

  /**
   * The SDK reuses the KV cache for a prompt that shares a prefix with the last one, which would make
   * every run after the first prefill a single token. A one-token prompt that differs from the first
   * prompt token leaves nothing to reuse.
   */
  private async forgetCachedPrompt(model: Model, promptIds: number[]): Promise<void> {
    const other = promptIds[0] === 0 ? 1 : 0;
    await model.complete([other], { maxTokens: 0 });
  }

  /** The loaded model, for tokenizing the shared prompt. */
  loaded(): Model {
    if (!this.model) throw new Error('ours: load() a model first');
    return this.model;
  }

  async dispose(): Promise<void> {
    this.model?.dispose();
    this.model = undefined;
  }
}
