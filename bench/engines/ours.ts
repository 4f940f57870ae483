/** Our engine through the SDK's public API: loadModel → generate (greedy) → stats. */
import { loadModel, type DecodeMode, type Model } from '../../sdk/src/index.js';
import type { DecodeResult, Engine } from './types.js';

export interface OursOptions {
  /** Decode mode passed to generate(); the recycle modes need `recycle` (see recycleCases in run.ts). */
  decode?: { mode: DecodeMode; draftLength?: number };
  /** Recycle head sidecar GGUF, passed to loadModel. */
  recycle?: string;
  contextLength?: number;
}

export class OursEngine implements Engine {
  readonly name: string;
  readonly description: string;
  private model: Model | undefined;

  constructor(private readonly options: OursOptions = {}) {
    const mode = options.decode?.mode ?? 'off';
    this.name = mode === 'off' ? 'ours' : `ours-${mode}`;
    this.description = `RecycleGPT SDK, WASM SIMD128, single thread, decode mode '${mode}'`;
  }

  async load(path: string): Promise<void> {
    this.model = await loadModel(path, { contextLength: this.options.contextLength, recycle: this.options.recycle });
  }

  async decode(promptIds: number[], nTokens: number): Promise<DecodeResult> {
    const model = this.loaded();
    await this.forgetCachedPrompt(model, promptIds);
    const stream = model.generate(promptIds, { maxTokens: nTokens, temperature: 0, decode: this.options.decode });
    const tokens: number[] = [];
    for await (const token of stream) tokens.push(token.id);
    const stats = await stream.stats;
    // The SDK stops at end-of-generation; the benchmark needs the full count to compare like with like.
    if (tokens.length !== nTokens) {
      throw new Error(`ours generated ${tokens.length} of ${nTokens} tokens (finish: ${stats.finishReason}); pick a prompt whose greedy continuation does not reach EOS`);
    }
    return { decodeTokensPerSecond: stats.decodeTokensPerSecond, prefillTokensPerSecond: stats.prefillTokensPerSecond, tokens };
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
