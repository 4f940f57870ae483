/** What every benchmarked engine offers: load a GGUF, decode greedily from token ids, free it. */

export interface DecodeResult {
  /** Single-token passes (forward + greedy pick) per second after the prompt: (tokens − 1) / decode time. */
  decodeTokensPerSecond: number;
  /** Prompt tokens per second, up to the first generated token's logits. */
  prefillTokensPerSecond: number;
  /** The generated ids, exactly as many as asked for (EOS does not stop a benchmark run). */
  tokens: number[];
}

export interface Engine {
  /** Short name used in tables and JSON, e.g. 'ours', 'llama.cpp', 'wllama'. */
  readonly name: string;
  /** How it runs, for the report (build, threads, flags). */
  readonly description: string;
  load(path: string): Promise<void>;
  /** Greedy decode of `nTokens` tokens after `promptIds`, from an empty KV cache. */
  decode(promptIds: number[], nTokens: number): Promise<DecodeResult>;
  dispose(): Promise<void>;
}

/** Rate in items per second from a count and milliseconds. */
export function perSecond(count: number, ms: number): number {
  return ms > 0 ? (count * 1000) / ms : 0;
}
