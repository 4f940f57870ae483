/**
 * Our engine inside workerd as an Engine of the benchmark: the SDK Worker (sdk-worker.ts) under Miniflare,
 * the model in local R2. Wall times come from the Worker's clock; CPU times from /proc for the workerd
 * process, by difference of two requests (the same prompt with 1 and with n tokens) so that the decode
 * figure holds decode steps only.
 */
import { mkdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { DecodeResult, Engine } from '../engines/types.js';
import { callJson } from './http.js';
import { bundleBenchWorker, startWorker, type RunningWorker } from './miniflare.js';

interface RunAnswer {
  tokens: number[];
  finishReason: string;
  prefillMs: number;
  decodeMs: number;
}

export class WorkerdEngine implements Engine {
  readonly name = 'ours in workerd';
  /** The engine module's kernels the Worker's SDK chose, once loaded (relaxed SIMD in workerd). */
  private kernels: string | undefined;
  private worker: RunningWorker | undefined;
  /** Fewest CPU ms a 1-token request of each prompt took so far (keyed by the prompt): the baseline decode CPU is measured against. */
  private readonly oneTokenCpu = new Map<string, number>();
  /** Peak resident memory of the workerd process (the isolate with everything in it), MiB, read when disposed. */
  lastPeakRssMiB: number | undefined;

  constructor(
    private readonly contextLength: number,
    /** Where the bundle and the local R2 state go. */
    private readonly scratchDir: string,
  ) {}

  get description(): string {
    return `the same SDK and engine (${this.kernels ?? '?'} kernels) in a Worker (bench/workerd/sdk-worker.ts) run by workerd through Miniflare, model from local R2`;
  }

  async load(path: string): Promise<void> {
    mkdirSync(this.scratchDir, { recursive: true });
    const script = await bundleBenchWorker(join(this.scratchDir, 'bundle'));
    this.worker = await startWorker({ scriptPath: script, persistDir: join(this.scratchDir, 'state') });
    await this.worker.upload(basename(path), path);
    this.kernels = ((await this.post('/load', { key: basename(path), contextLength: this.contextLength })) as { kernels: string }).kernels;
  }

  async decode(promptIds: number[], nTokens: number): Promise<DecodeResult> {
    const worker = this.running();
    const c0 = worker.cpuMs();
    const first = await this.run(promptIds, 1);
    const c1 = worker.cpuMs();
    const key = promptIds.join(',');
    const oneCpu = Math.min(c1 - c0, this.oneTokenCpu.get(key) ?? Infinity);
    this.oneTokenCpu.set(key, oneCpu);
    if (nTokens === 1) return { prefillMs: first.prefillMs, decodeMs: 0, prefillCpuMs: c1 - c0, decodeCpuMs: 0, tokens: first.tokens };
    const all = await this.run(promptIds, nTokens);
    const c2 = worker.cpuMs();
    return { prefillMs: all.prefillMs, decodeMs: all.decodeMs, prefillCpuMs: c1 - c0, decodeCpuMs: c2 - c1 - oneCpu, tokens: all.tokens };
  }

  async dispose(): Promise<void> {
    this.lastPeakRssMiB = this.worker?.peakRssMiB();
    await this.worker?.dispose();
    this.worker = undefined;
  }

  private async run(promptIds: number[], maxTokens: number): Promise<RunAnswer> {
    const answer = (await this.post('/run', { promptIds, maxTokens })) as RunAnswer;
    if (answer.tokens.length !== maxTokens) throw new Error(`ours in workerd generated ${answer.tokens.length} of ${maxTokens} tokens (finish: ${answer.finishReason})`);
    return answer;
  }

  private post(path: string, body: unknown): Promise<unknown> {
    return callJson(this.running().url, path, body);
  }

  private running(): RunningWorker {
    if (!this.worker) throw new Error('ours in workerd: load() a model first');
    return this.worker;
  }
}
