import type { GenerationStats } from 'recyclegpt';
import { badRequest } from './errors.js';

/**
 * The CPU a request may spend, in tokens. Cloudflare ends a Worker invocation that exceeds its CPU limit
 * (`[limits] cpu_ms`) without letting it send anything, so the server stops first: it gives each request
 * no more tokens than its prompt leaves room for in the limit, and the response says why it stopped
 * (finish_reason 'length', recyclegpt.limit 'cpu_time'). Costs per token are estimates (configured, or
 * from the model's size) and, where the clock moves during computation (Node, `wrangler dev`; not
 * deployed Workers), measured: the slower of the two counts.
 */
export interface CpuCosts {
  /** CPU milliseconds per generated token. */
  decodeMs: number;
  /** CPU milliseconds per prompt token. */
  prefillMs: number;
}

/** Part of the CPU limit the tokens may use; the rest covers tokenizing, JSON, the runtime. */
const USABLE_SHARE = 0.8;
/**
 * From bench/README.md (2026-11-30, AMD EPYC): the 5.9 MB demo Q8_0 decodes at 3286 tok/s and a ~30 MB Q8_0
 * model at 592 tok/s on one core, both ≈ 18–20 MB of weights per ms; taken at 8 MB/ms for slower CPUs, plus
 * a fixed cost per token for sampling, detokenizing and the response's JSON.
 */
const WEIGHT_BYTES_PER_MS = 8e6;
const FIXED_MS_PER_TOKEN = 0.1;
/** Prefill runs ~1.8× decode's tokens per second there (batched passes). */
export const PREFILL_SHARE = 0.6;

/** Cost estimates from the model's size in bytes (its weights are read once per decoded token). */
export function costsFromSize(weightBytes: number): CpuCosts {
  const decodeMs = FIXED_MS_PER_TOKEN + weightBytes / WEIGHT_BYTES_PER_MS;
  return { decodeMs, prefillMs: decodeMs * PREFILL_SHARE };
}

export class CpuBudget {
  private measuredDecodeMs = 0;
  private measuredPrefillMs = 0;

  constructor(
    /** The platform's CPU limit per request, in milliseconds. */
    readonly cpuMs: number,
    /** Configured costs; without them the host sets an estimate (`estimate`) or only measurements count. */
    private estimated: CpuCosts = { decodeMs: 0, prefillMs: 0 },
  ) {}

  /** Sets the estimated costs (e.g. from the model's size once it is known). */
  estimate(costs: CpuCosts): void {
    this.estimated = costs;
  }

  costs(): CpuCosts {
    return { decodeMs: Math.max(this.estimated.decodeMs, this.measuredDecodeMs), prefillMs: Math.max(this.estimated.prefillMs, this.measuredPrefillMs) };
  }

  /** How many tokens a request with this prompt may generate; a 400 when the prompt alone would use the budget up. */
  tokens(promptTokens: number, param: string): number {
    const { decodeMs, prefillMs } = this.costs();
    if (decodeMs === 0) return Number.POSITIVE_INFINITY;
    const left = this.cpuMs * USABLE_SHARE - promptTokens * prefillMs;
    const tokens = Math.floor(left / decodeMs);
    if (tokens < 1) {
      throw badRequest(
        `The prompt is ${promptTokens} tokens; reading it takes about ${Math.round(promptTokens * prefillMs)} ms of CPU, and this server's limit is ${this.cpuMs} ms per request. Shorten it.`,
        param,
        'context_length_exceeded',
      );
    }
    return tokens;
  }

  /** Learns the speed from a finished generation whose clock moved (it stands still in deployed Workers). */
  observe(stats: GenerationStats): void {
    if (stats.decodeMs > 0 && stats.generatedTokens > 1) this.measuredDecodeMs = Math.max(this.measuredDecodeMs * 0.8, stats.decodeMs / (stats.generatedTokens - 1));
    if (stats.prefillMs > 0 && stats.promptTokens > 0) this.measuredPrefillMs = Math.max(this.measuredPrefillMs * 0.8, stats.prefillMs / stats.promptTokens);
  }
}
