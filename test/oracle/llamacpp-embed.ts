/**
 * llama.cpp's embeddings as a test oracle: node-llama-cpp's embedding context (`createEmbeddingContext`,
 * `getEmbeddingFor`), one thread. It pools as the GGUF's `<arch>.pooling_type` says (without one: the last token's
 * state) and does not normalise; texts get BOS/EOS as the tokenizer metadata says, token ids go in as given (BOS
 * prepended where the model adds one and it is missing).
 */
import type { LlamaEmbeddingContext, LlamaModel, Token } from 'node-llama-cpp';
import { getSharedLlama } from './llamacpp.js';

export interface LlamaCppEmbedder {
  /** The embedding of a text or of token ids, as llama.cpp gives it (raw). */
  embed(input: string | readonly number[]): Promise<Float32Array>;
  /** llama.cpp's tokens for a text as its embedding context runs them. */
  inputTokens(text: string): number[];
  dispose(): Promise<void>;
}

/** `flashAttention` false (default) is the path the engine mirrors; true measures llama.cpp's own spread. */
export async function openLlamaCppEmbedder(path: string, { contextSize = 256, flashAttention = false } = {}): Promise<LlamaCppEmbedder> {
  const llama = await getSharedLlama();
  const model: LlamaModel = await llama.loadModel({ modelPath: path, gpuLayers: 0, useMmap: false, defaultContextFlashAttention: flashAttention });
  const context: LlamaEmbeddingContext = await model.createEmbeddingContext({ contextSize, threads: 1 });
  return {
    async embed(input) {
      const embedding = await context.getEmbeddingFor(typeof input === 'string' ? input : (input as Token[]));
      return Float32Array.from(embedding.vector);
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
