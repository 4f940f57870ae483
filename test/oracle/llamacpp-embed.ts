/**
 * llama.cpp's embeddings as a test oracle: node-llama-cpp's embedding context (`createEmbeddingContext`,
 * `getEmbeddingFor`), one thread. It pools as the GGUF's `<arch>.pooling_type` says (without one: the last token's
 * state) and does not normalise; texts get BOS/EOS as the tokenizer metadata says, token ids go in as given (BOS
 * prepended where the model adds one and it is missing). meanOfTokenStates gives the mean pooling of a file
 * without the key.
 */
import type { LlamaContext, LlamaContextSequence, LlamaEmbeddingContext, LlamaModel, Token } from 'node-llama-cpp';
import { getSharedLlama, NODE_LLAMA_CPP } from './llamacpp.js';

export interface LlamaCppEmbedder {
  /** The embedding of a text or of token ids, as llama.cpp gives it (raw). */
  embed(input: string | readonly number[]): Promise<Float32Array>;
  /**
   * For a file without `<arch>.pooling_type` (llama.cpp pools nothing there: `embed` gives the last token's state):
   * the mean of the final-normed states of every position of `ids` as given (no BOS/EOS added), what llama.cpp's
   * `--pooling mean` computes on the same file. Leaves the context's sequence holding `ids`.
   */
  meanOfTokenStates(ids: readonly number[]): Promise<Float32Array>;
  /** llama.cpp's tokens for a text as its embedding context runs them. */
  inputTokens(text: string): number[];
  dispose(): Promise<void>;
}

export interface EmbedderOptions {
  contextSize?: number;
  /** false (default) is the path the engine mirrors; true measures llama.cpp's own spread. */
  flashAttention?: boolean;
  /** KV cache element type: llama.cpp's default f16, or f32 (to compare without the cache's rounding). */
  kvType?: 'f16' | 'f32';
}

export async function openLlamaCppEmbedder(path: string, { contextSize = 256, flashAttention = false, kvType = 'f16' }: EmbedderOptions = {}): Promise<LlamaCppEmbedder> {
  const llama = await getSharedLlama();
  const { LlamaEmbeddingContext } = (await import(NODE_LLAMA_CPP)) as typeof import('node-llama-cpp');
  const model: LlamaModel = await llama.loadModel({ modelPath: path, gpuLayers: 0, useMmap: false });
  // createEmbeddingContext takes no KV cache type: build its context as it does (`_embeddings`), with one.
  const cache = kvType === 'f32' ? 'F32' : 'F16';
  const llamaContext = await model.createContext({
    contextSize, threads: 1, flashAttention, experimentalKvCacheKeyType: cache, experimentalKvCacheValueType: cache, _embeddings: true,
  } as Parameters<LlamaModel['createContext']>[0]);
  const context = new (LlamaEmbeddingContext as unknown as new (options: { _llamaContext: LlamaContext }) => LlamaEmbeddingContext)({ _llamaContext: llamaContext });
  return {
    async embed(input) {
      const embedding = await context.getEmbeddingFor(typeof input === 'string' ? input : (input as Token[]));
      return Float32Array.from(embedding.vector);
    },
    async meanOfTokenStates(ids) {
      // node-llama-cpp has no public call for every position's state: read them as its getEmbeddingFor does (its
      // sequence, the native context's getEmbedding), one token at a time on the KV cache (llama.cpp's decode path;
      // far cheaper than one run per prefix, and equal to that within llama.cpp's own kernel spread).
      const metadata = model.fileInfo.metadata as unknown as Record<string, { pooling_type?: number }> & { general: { architecture: string } };
      if (metadata[metadata.general.architecture]?.pooling_type) throw new Error('meanOfTokenStates reads per-token states: give it a file without a pooling_type');
      const internal = context as unknown as { _sequence: LlamaContextSequence; _llamaContext: { _ctx: { getEmbedding(n: number): Float64Array } } };
      const sequence = internal._sequence;
      await sequence.eraseContextTokenRanges([{ start: 0, end: sequence.nextTokenIndex }]);
      const sum = new Float64Array(model.embeddingVectorSize);
      for (const id of ids) {
        for await (const _ of sequence.evaluate([id as Token], { _noSampling: true } as Parameters<LlamaContextSequence['evaluate']>[1])) break;
        internal._llamaContext._ctx.getEmbedding(1).forEach((x, j) => (sum[j] += x));
      }
      return Float32Array.from(sum, (s) => s / ids.length);
    },
    inputTokens(text) {
      const ids = model.tokenize(text, false).map(Number);
      const bos = model.tokens.shouldPrependBosToken && model.tokens.bos != null ? [Number(model.tokens.bos)] : [];
      const eos = model.tokens.shouldAppendEosToken && model.tokens.eos != null ? [Number(model.tokens.eos)] : [];
      return [...bos, ...ids, ...eos];
    },
    async dispose() {
      await context.dispose();
      await model.dispose();
    },
  };
}
