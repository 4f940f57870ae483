/** What every benchmarked engine offers: load a GGUF, decode greedily from token ids, free it. */

export interface DecodeResult {
  /** Wall ms from the call until the first generated token (the prompt's prefill and one pick). */
  prefillMs: number;
  /** Wall ms from the first generated token to the last: (tokens − 1) single-token passes with their greedy picks. */
  decodeMs: number;
  /** The same spans in CPU time of this process (all its threads: engines running on a worker thread count). */
  prefillCpuMs: number;
  decodeCpuMs: number;
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

/** CPU ms this process has used so far, every thread. */
export function cpuMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

/** Marks the three moments of a run (start, first token, last token) on both clocks. */
export class Stopwatch {
  private readonly wall = [performance.now()];
  private readonly cpu = [cpuMs()];

  mark(): void {
    this.wall.push(performance.now());
    this.cpu.push(cpuMs());
  }

  /** prefill = start → first mark, decode = first → second mark. */
  result(tokens: number[]): DecodeResult {
    const [w0, w1, w2] = this.wall as [number, number, number];
    const [c0, c1, c2] = this.cpu as [number, number, number];
    return { prefillMs: w1 - w0, decodeMs: w2 - w1, prefillCpuMs: c1 - c0, decodeCpuMs: c2 - c1, tokens };
  }
}
