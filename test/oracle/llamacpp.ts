/**
 * llama.cpp as a test oracle, through node-llama-cpp (CPU build, one thread, so results are repeatable).
 * node-llama-cpp lives in tools/peers (installed apart from the workspaces), hence the absolute file URL.
 */
import type { Llama, LlamaContext, LlamaContextSequence, LlamaModel, Token } from 'node-llama-cpp';

const NODE_LLAMA_CPP = new URL('../../tools/peers/node_modules/node-llama-cpp/dist/index.js', import.meta.url).href;

export interface LlamaCppModel {
  nVocab: number;
  bosId: number | undefined;
  eosId: number | undefined;
  /**
   * llama.cpp's tokenization. `special` parses special-token text such as `<s>`; `addBos` prepends BOS
   * (default: what the model's tokenizer.ggml.add_bos_token asks for, as llama-cli does).
   */
  tokenize(text: string, options?: { special?: boolean; addBos?: boolean }): number[];
  detokenize(ids: readonly number[], options?: { special?: boolean }): string;
  /** Greedy decoding (temperature 0, no penalties) of exactly `n` new tokens; EOS is just another token. */
  greedy(promptIds: readonly number[], n: number): Promise<number[]>;
  /** Logits after every position of `ids` (teacher forcing), one Float32Array of nVocab per position. */
  logits(ids: readonly number[]): Promise<Float32Array[]>;
  dispose(): Promise<void>;
}

let llamaPromise: Promise<Llama> | undefined;

/** One Llama instance per process: the native backend is initialised once. */
export function getSharedLlama(): Promise<Llama> {
  llamaPromise ??= (async () => {
    const { getLlama, LlamaLogLevel } = (await import(NODE_LLAMA_CPP)) as typeof import('node-llama-cpp');
    return getLlama({ gpu: false, logLevel: LlamaLogLevel.error, build: 'never', usePrebuiltBinaries: true });
  })();
  return llamaPromise;
}

export interface OpenLlamaCppOptions {
  /** Defaults to the model's context_length. */
  contextSize?: number;
  /** KV cache element type; llama.cpp's default is f16. */
  kvType?: 'f16' | 'f32';
  /** Defaults to false, the path the engine mirrors; true measures llama.cpp's own kernel-to-kernel difference. */
  flashAttention?: boolean;
}

export async function openLlamaCpp(path: string, options: OpenLlamaCppOptions = {}): Promise<LlamaCppModel> {
  const llama = await getSharedLlama();
  const model: LlamaModel = await llama.loadModel({ modelPath: path, gpuLayers: 0, useMmap: false });
  const context: LlamaContext = await model.createContext({
    contextSize: options.contextSize ?? model.trainContextSize,
    threads: 1,
    sequences: 1,
    flashAttention: options.flashAttention ?? false,
    experimentalKvCacheKeyType: options.kvType === 'f32' ? 'F32' : 'F16',
    experimentalKvCacheValueType: options.kvType === 'f32' ? 'F32' : 'F16',
  });
  const sequence: LlamaContextSequence = context.getSequence();
  const nVocab = (model.fileInfo.metadata as unknown as { tokenizer: { ggml: { tokens: readonly string[] } } }).tokenizer.ggml.tokens.length;
  // Calls on one sequence must not interleave: chain them.
  let queue: Promise<unknown> = Promise.resolve();
  const serialized = <T>(job: () => Promise<T>): Promise<T> => {
    const run = queue.then(job, job);
    queue = run.catch(() => undefined);
    return run;
  };

  return {
    nVocab,
    bosId: model.tokens.bos ?? undefined,
    eosId: model.tokens.eos ?? undefined,
    tokenize(text, { special = false, addBos = model.tokens.shouldPrependBosToken } = {}) {
      const ids = model.tokenize(text, special).map(Number);
      return addBos && model.tokens.bos != null ? [Number(model.tokens.bos), ...ids] : ids;
    },
    detokenize(ids, { special = false } = {}) {
      return model.detokenize(ids as Token[], special);
    },
    greedy(promptIds, n) {
      return serialized(async () => {
        if (promptIds.length === 0) throw new Error('greedy needs at least one prompt token');
        await sequence.clearHistory();
        const out: number[] = [];
        if (n <= 0) return out;
        for await (const token of sequence.evaluate(promptIds as Token[], { temperature: 0, yieldEogToken: true })) {
          out.push(Number(token));
          if (out.length === n) break;
        }
        return out;
      });
    },
    logits(ids) {
      return serialized(async () => {
        await sequence.clearHistory();
        const results = await sequence.controlledEvaluate(ids.map((id) => [id as Token, { generateNext: { logits: true } }]));
        return results.map((result, i) => {
          const map = result?.next.logits;
          if (!map) throw new Error(`llama.cpp returned no logits for position ${i}`);
          const row = new Float32Array(nVocab);
          for (const [token, logit] of map) row[Number(token)] = logit;
          return row;
        });
      });
    },
    async dispose() {
      await context.dispose();
      await model.dispose();
    },
  };
}
