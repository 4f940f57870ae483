/** The decode loop: prefill, sample, stream text, stop. One generation at a time per KV cache. */
import type { Backend, ForwardOutput } from './backend.js';
import { InvalidArgumentError, RecycleGPTError } from './errors.js';
import { Sampler, draw, resolveSampling, type Candidates } from './sampler.js';
import { StopMatcher } from './stop.js';
import { StreamingDecoder } from './tokenizer/stream.js';
import type { Tokenizer } from './tokenizer/types.js';
import type { FinishReason, GeneratedToken, GenerateOptions, GenerationStats } from './types.js';

/**
 * The engine with what its KV caches hold, so a prompt that extends the last one reuses them.
 * With a recycle head, head row p takes (base hidden state at p-1, token at p); `headCached` says
 * up to which position those rows are valid.
 */
export class Context<B extends Backend = Backend> {
  /** Tokens whose K/V entries are in the base cache, position by position. */
  cached: number[] = [];
  headCached = 0;
  /** Position of the first row of the prefill's last base pass, so its hidden rows can be addressed. */
  lastPassStart = 0;
  private readonly draftCosts = new Map<string, DraftCost | undefined>();
  private readonly draftRecords = new Map<number, { rounds: number; tokens: number }>();

  constructor(
    readonly llama: B,
    readonly tokenizer: Tokenizer,
  ) {}

  get capacity(): number {
    return this.llama.config.contextLength;
  }

  get hasHead(): boolean {
    return this.llama.recycleMaxBatch > 0;
  }

  /**
   * Runs the prompt through the model, reusing the cached prefix, and leaves the last token's logits
   * (and its hidden state in the engine's last row). With `allLogits`, returns a copy of every
   * position's logits and reuses nothing.
   */
  async prefill(ids: number[], allLogits = false): Promise<Float32Array[]> {
    const { maxBatch, vocabSize } = this.llama.config;
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
        throw new InvalidArgumentError(`token id ${id} is out of range: the vocabulary has ${vocabSize} tokens`);
      }
    }
    if (ids.length === 0) throw new InvalidArgumentError('the prompt is empty: give at least one token');
    if (ids.length > this.capacity) {
      throw new RecycleGPTError(
        'CONTEXT_FULL',
        `the prompt has ${ids.length} tokens but the context holds ${this.capacity}; shorten it or load the model with a larger contextLength`,
      );
    }
    // Keep at least the last token to run, since its logits are what comes next. With a head, rerun from
    // where its rows end (the next row needs the base hidden state before it), and from before the first
    // changed token, whose head row was built with the old one.
    const prefix = commonPrefix(this.cached, ids);
    let start = allLogits ? 0 : Math.min(prefix, ids.length - 1);
    if (this.hasHead) start = Math.min(start, this.headCached, Math.max(prefix - 1, 0));
    this.cached.length = start;
    this.headCached = Math.min(this.headCached, start);
    const rows: Float32Array[] = [];
    while (start < ids.length) {
      const chunk = ids.slice(start, start + maxBatch);
      const end = start + chunk.length;
      const logitsFrom = allLogits ? 0 : end === ids.length ? chunk.length - 1 : chunk.length;
      await this.llama.forward(chunk, start, logitsFrom);
      this.lastPassStart = start;
      for (let r = 0; r < chunk.length - logitsFrom; r++) rows.push(this.llama.logits(r).slice(0, vocabSize));
      // Head rows start+1 … end-1 now (and `end` when the next chunk's first token is known); the row
      // for the prompt's last position waits for the token the decoder picks.
      if (this.hasHead) await this.recycleRows(0, ids.slice(start + 1, Math.min(end + 1, ids.length)), start + 1, true);
      this.cached.push(...chunk);
      start = end;
    }
    return rows;
  }

  /**
   * What drafting costs on this backend in units of a 1-token pass: one head row, and a full pass of k + 1
   * tokens. Measured once (fastest of a few tries) with passes at positions that hold nothing kept yet;
   * undefined where the clock does not move while code runs (Workers) or the context is too short.
   * Call before a prefill: it overwrites the backend's last logits and hidden rows. Passes read back what decoding
   * will (`output`); where drafting runs as the backend's draftAndCheck, its one call is measured as the pass (head
   * rows included).
   */
  async draftCost(drafts: number, output: ForwardOutput): Promise<DraftCost | undefined> {
    const key = `${drafts} ${JSON.stringify(output)}`;
    if (this.draftCosts.has(key)) return this.draftCosts.get(key);
    const n = drafts + 1;
    const pos = Math.min(this.capacity - n, CALIBRATION_POSITION);
    let cost: DraftCost | undefined;
    if (pos > 0 && n <= this.llama.config.maxBatch && n <= this.llama.recycleMaxBatch) {
      const { llama } = this;
      const one = await fastest(() => llama.forward([0], pos, 0, output));
      if (fusesDrafting(llama, output)) {
        // The 1-token pass above left the base hidden row the head starts from.
        const round = await fastest(() => llama.draftAndCheck!(0, [0], pos, drafts, 0, output));
        if (one > 0) cost = { head: 0, pass: round / one };
      } else {
        const pass = await fastest(() => llama.forward(new Array<number>(n).fill(0), pos, 0, output));
        const head = await fastest(() => llama.recycleForward('base', 0, [0], pos, 0, 'argmax'));
        if (one > 0) cost = { head: head / one, pass: pass / one };
      }
      // Those passes wrote cache entries from `pos` on, so nothing cached there may be reused.
      this.cached.length = Math.min(this.cached.length, pos);
      this.headCached = Math.min(this.headCached, pos - 1);
    }
    this.draftCosts.set(key, cost);
    return cost;
  }

  /** Verified drafting rounds run with `drafts` drafts on this context, and the tokens they yielded. */
  draftRecord(drafts: number): { rounds: number; tokens: number } {
    let record = this.draftRecords.get(drafts);
    if (!record) this.draftRecords.set(drafts, (record = { rounds: 0, tokens: 0 }));
    return record;
  }

  /** Appends one token and picks the next (reading back only its argmax where the sampler needs no more). */
  async step(id: number, sampler: Sampler, history: number[]): Promise<number> {
    await this.llama.forward([id], this.cached.length, 0, outputFor(this.llama, sampler));
    this.cached.push(id);
    return pick(this.llama, 0, sampler, history);
  }

  /**
   * Head rows at positions pos… for `tokens`, from consecutive base hidden rows starting at `fromRow`
   * of the last base pass, in batches the head takes. Leaves the last row's head logits unless `quiet`,
   * and returns which row of the head's last pass is the last token's (its hidden state feeds a chain).
   */
  async recycleRows(fromRow: number, tokens: number[], pos: number, quiet = false): Promise<number> {
    const batch = this.llama.recycleMaxBatch;
    let lastRow = 0;
    for (let i = 0; i < tokens.length; i += batch) {
      const part = tokens.slice(i, i + batch);
      const last = i + part.length === tokens.length;
      await this.llama.recycleForward('base', fromRow + i, part, pos + i, last && !quiet ? part.length - 1 : part.length, 'argmax');
      lastRow = part.length - 1;
    }
    if (tokens.length > 0) this.headCached = pos + tokens.length - 1;
    return lastRow;
  }
}

/** Relative costs of drafting, in 1-token passes. */
export interface DraftCost {
  head: number;
  pass: number;
}

/** Calibration passes run here (or earlier in a short context): far enough to include some attention. */
const CALIBRATION_POSITION = 128;

async function fastest(run: () => unknown): Promise<number> {
  let best = Infinity;
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    await run();
    best = Math.min(best, performance.now() - t0);
  }
  return best;
}

/** Rounds of drafting seen before judging whether it pays. */
const JUDGE_AFTER_ROUNDS = 4;

/**
 * Whether verified drafting has produced tokens more cheaply than plain passes would: per round it yields
 * `tokensPerRound` tokens for one pass of k + 1 tokens and about (tokensPerRound + k - 1) head rows.
 */
export function draftingPays(cost: DraftCost, drafts: number, tokensPerRound: number): boolean {
  return tokensPerRound >= cost.pass + cost.head * (tokensPerRound + drafts - 1);
}

function commonPrefix(a: number[], b: number[]): number {
  let n = 0;
  while (n < a.length && n < b.length && a[n] === b[n]) n++;
  return n;
}

export function checkMaxTokens(maxTokens: number | undefined): number {
  const value = maxTokens ?? 256;
  if (!Number.isInteger(value) || value < 0) throw new InvalidArgumentError(`maxTokens must be a non-negative integer, got ${String(maxTokens)}`);
  return value;
}

// A long synchronous decode would starve the event loop (abort signals, other streams, socket writes):
// hand control back every few tokens. Counted in tokens because Workers' clock stands still while
// JavaScript computes. setImmediate where it exists (Node), else a zero timeout.
const YIELD_EVERY_TOKENS = 4;
const macrotask: () => Promise<void> =
  typeof setImmediate === 'function'
    ? () => new Promise((resolve) => setImmediate(resolve))
    : () => new Promise((resolve) => setTimeout(resolve, 0));

/** What a decode mode did, for the stats. */
interface DecodeCounters {
  fullPasses: number;
  proposed: number;
  accepted: number;
  /** Verified drafting stopped because it cost more than it saved on this backend. */
  draftingStopped: boolean;
}

/** Row `row`'s pick from the last base pass, which read back `outputFor(llama, sampler)`. */
function pick(llama: Backend, row: number, sampler: Sampler, history: number[]): number {
  if (sampler.argmaxOnly) return llama.argmax(row);
  return candidatesFor(llama, sampler) > 0 ? sampler.sampleCandidates(llama.candidates!(row)) : sampler.sample(llama.logits(row), history);
}

/** Row `row`'s sampling distribution from the last base pass (see pick). */
function distributionAt(llama: Backend, row: number, sampler: Sampler, history: number[]): Candidates {
  return candidatesFor(llama, sampler) > 0 ? sampler.candidateDistribution(llama.candidates!(row)) : sampler.distribution(llama.logits(row), history);
}

/** Plain decoding from the first picked token: one full pass per token. */
async function* plainTokens(context: Context, first: number, sampler: Sampler, history: number[], counters: DecodeCounters): AsyncGenerator<number> {
  let id = first;
  for (;;) {
    yield id;
    if (context.cached.length >= context.capacity) return;
    id = await context.step(id, sampler, history);
    counters.fullPasses++;
  }
}

/**
 * Recycled decoding. Each round: the token x at position P is known (and yielded); the head, given the
 * base hidden state at P-1 and x, drafts `drafts` tokens (feeding its own hidden state back after the
 * first); one batched full pass runs x and the drafts. `fast` keeps the drafts unchecked (the paper);
 * `exact`/`chain` keep the longest prefix the full pass agrees with, plus the full pass's own token
 * where it disagrees, so the output is what plain decoding gives (with sampling: in distribution).
 */
async function* recycledTokens(
  context: Context,
  first: number,
  sampler: Sampler,
  history: number[],
  counters: DecodeCounters,
  mode: 'fast' | 'exact' | 'chain',
  drafts: number,
  cost: DraftCost | undefined,
): AsyncGenerator<number> {
  const { llama } = context;
  const output = outputFor(llama, sampler);
  let x = first;
  // Head rows still to run: base hidden rows from `fromRow` paired with these tokens (the last is x).
  let fromRow = context.cached.length - 1 - context.lastPassStart;
  let headTokens = [x];
  // What drafting yielded so far on this context, earlier generations included.
  const record = context.draftRecord(drafts);
  for (;;) {
    yield x;
    if (cost && record.rounds >= JUDGE_AFTER_ROUNDS && !draftingPays(cost, drafts, record.tokens / record.rounds)) {
      // Plain passes from here on: the output is the same, and they are cheaper on this backend.
      counters.draftingStopped = true;
      if (context.cached.length >= context.capacity) return;
      counters.fullPasses++;
      yield* plainTokens(context, await context.step(x, sampler, history), sampler, history, counters);
      return;
    }
    const pos = context.cached.length;
    // x and its drafts run as one batch, which a backend may cap (WebGPU: 8 tokens).
    const room = Math.min(drafts, context.capacity - pos - 1, llama.config.maxBatch - 1);
    if (room < 0) return;
    let guesses: number[];
    if (fusesDrafting(llama, output) && room > 0 && headTokens.length <= llama.recycleMaxBatch) {
      // One round trip for the head rows, the drafts and their check (which reads back picks or candidates alone).
      guesses = await llama.draftAndCheck!(fromRow, headTokens, pos, room, mode === 'fast' ? room : 0, output);
      context.headCached = pos;
    } else {
      guesses = await draftTokens(context, fromRow, headTokens, pos, room);
      await llama.forward([x, ...guesses], pos, mode === 'fast' ? guesses.length : 0, output);
    }
    counters.fullPasses++;
    context.cached.push(x);
    counters.proposed += guesses.length;

    if (mode === 'fast') {
      for (const g of guesses) {
        counters.accepted++;
        context.cached.push(g);
        yield g;
      }
      x = pick(llama, 0, sampler, history);
      headTokens = [...guesses, x];
      fromRow = 0;
      continue;
    }
    let kept = 0;
    let next = -1;
    while (next === -1) {
      if (kept === guesses.length) next = pick(llama, kept, sampler, history);
      else {
        const verdict = sampler.greedy ? pick(llama, kept, sampler, history) : verify(sampler, distributionAt(llama, kept, sampler, history), guesses[kept]);
        if (verdict === guesses[kept]) {
          counters.accepted++;
          context.cached.push(verdict);
          kept++;
          yield verdict;
        } else next = verdict;
      }
    }
    x = next;
    headTokens = [...guesses.slice(0, kept), x];
    fromRow = 0;
    record.rounds++;
    record.tokens += kept + 1;
  }
}

/**
 * What a base pass reads back for this sampler: the argmax alone where that is all it needs, the top k where a
 * backend reads them back for less than the whole row, else logits.
 */
function outputFor(llama: Backend, sampler: Sampler): ForwardOutput {
  if (sampler.argmaxOnly) return 'argmax';
  const k = candidatesFor(llama, sampler);
  return k > 0 ? { topK: k } : 'logits';
}

/** The top-k candidates a base pass reads back for this sampler, or 0 for whole rows. */
function candidatesFor(llama: Backend, sampler: Sampler): number {
  return llama.candidates ? sampler.candidatesNeeded(llama.maxTopK ?? 0, llama.config.vocabSize) : 0;
}


/** Whether drafting runs as the backend's one-call draftAndCheck: where the check reads back picks or candidates. */
function fusesDrafting(llama: Backend, output: ForwardOutput): output is Exclude<ForwardOutput, 'logits'> {
  return llama.draftAndCheck !== undefined && output !== 'logits';
}

/** Runs the head rows for `headTokens` (ending at `pos`), then drafts `count` tokens by argmax, chaining the head. */
async function draftTokens(context: Context, fromRow: number, headTokens: number[], pos: number, count: number): Promise<number[]> {
  const { llama } = context;
  let headRow = await context.recycleRows(fromRow, headTokens, pos - headTokens.length + 1);
  const guesses: number[] = [];
  while (guesses.length < count) {
    if (guesses.length > 0) {
      await llama.recycleForward('head', headRow, [guesses[guesses.length - 1]], pos + guesses.length, 0, 'argmax');
      headRow = 0;
    }
    guesses.push(llama.recycleArgmax(0));
  }
  return guesses;
}

/**
 * The full pass's token at a drafted position when sampling (greedy takes its pick): the draft (a point mass)
 * is kept with probability p(draft), else a token is drawn from p without the draft, which together
 * draw exactly from p (speculative sampling with a deterministic draft).
 */
function verify(sampler: Sampler, p: Candidates, draft: number): number {
  const at = p.ids.indexOf(draft);
  const pDraft = at === -1 ? 0 : p.probs[at];
  if (sampler.random.next() < pDraft) return draft;
  const rest = { ids: p.ids.filter((_, i) => i !== at), probs: p.probs.filter((_, i) => i !== at) };
  const mass = 1 - pDraft;
  return draw({ ids: rest.ids, probs: rest.probs.map((q) => q / mass) }, sampler.random.next());
}

/** Generates from `promptIds`, yielding tokens; `report` gets the stats when it ends, however it ends. */
export async function* decode(
  context: Context,
  promptIds: number[],
  options: GenerateOptions,
  report: (stats: GenerationStats) => void,
): AsyncGenerator<GeneratedToken> {
  const maxTokens = checkMaxTokens(options.maxTokens);
  const mode = options.decode?.mode ?? 'off';
  const drafts = checkDrafts(mode, options.decode?.draftLength);
  if (mode !== 'off' && !context.hasHead) {
    throw new InvalidArgumentError(`decode mode '${mode}' needs a recycle head; load one with the \`recycle\` option`);
  }
  const sampler = new Sampler(options);
  const stop = new StopMatcher(options.stop ?? []);
  const decoder = new StreamingDecoder(context.tokenizer);
  const history = [...promptIds];
  const counters: DecodeCounters = { fullPasses: 0, proposed: 0, accepted: 0, draftingStopped: false };

  const adaptive = (mode === 'exact' || mode === 'chain') && options.decode?.adaptive !== false;
  const cost = adaptive && !options.signal?.aborted ? await context.draftCost(drafts, outputFor(context.llama, sampler)) : undefined;

  const t0 = now();
  // A caller that gave up while waiting for its turn gets no prefill.
  const aborted = options.signal?.aborted ?? false;
  const first = aborted ? -1 : sampler.sample((await context.prefill(promptIds))[0]!, history);
  const t1 = now();
  const tokens =
    mode === 'off'
      ? plainTokens(context, first, sampler, history, counters)
      : recycledTokens(context, first, sampler, history, counters, mode, drafts, cost);
  let generated = 0;
  let sinceYield = 0;
  let finish: FinishReason = 'abort';
  // Each token is yielded once the next is known, so text held back at the end (a stop-sequence
  // prefix that never completed, a split character) still reaches the caller with the last token.
  let previous: GeneratedToken | undefined;
  let failed = false;
  try {
    finish = 'length';
    while (generated < maxTokens) {
      if (aborted || options.signal?.aborted) {
        finish = 'abort';
        break;
      }
      const next = await tokens.next();
      if (next.done) break;
      const id = next.value;
      if (context.tokenizer.isEog(id)) {
        finish = 'stop';
        break;
      }
      generated++;
      history.push(id);
      const { text, stopped } = stop.push(decoder.push(id));
      if (previous) {
        // A caller that stops iterating here ends the generation as an abort.
        finish = 'abort';
        yield previous;
        finish = 'length';
      }
      previous = { id, text };
      if (stopped) {
        finish = 'stop';
        break;
      }
      if (++sinceYield === YIELD_EVERY_TOKENS) {
        sinceYield = 0;
        await macrotask();
      }
    }
    await tokens.return(undefined);
    if (previous) {
      if (!stop.stopped) previous.text += stop.flush(decoder.flush());
      const reason = finish;
      finish = 'abort';
      yield previous;
      finish = reason;
    }
  } catch (error) {
    failed = true;
    throw error;
  } finally {
    const t2 = now();
    if (!failed) report({
      promptTokens: promptIds.length,
      generatedTokens: generated,
      prefillMs: t1 - t0,
      decodeMs: t2 - t1,
      prefillTokensPerSecond: rate(promptIds.length, t1 - t0),
      decodeTokensPerSecond: rate(Math.max(0, generated - 1), t2 - t1),
      finishReason: finish,
      decodeMode: mode,
      fullPasses: counters.fullPasses,
      proposed: counters.proposed,
      recycled: counters.accepted,
      acceptanceRate: mode !== 'fast' && counters.proposed > 0 ? counters.accepted / counters.proposed : undefined,
      tokensPerPass: counters.fullPasses > 0 ? Math.max(0, generated - 1) / counters.fullPasses : undefined,
      draftingStopped: counters.draftingStopped || undefined,
    });
  }
}

/** Checks a generation's options up front, so a bad one fails before anything streams. */
export function checkGenerateOptions(options: GenerateOptions): void {
  resolveSampling(options);
  checkMaxTokens(options.maxTokens);
  checkDrafts(options.decode?.mode ?? 'off', options.decode?.draftLength);
  new StopMatcher(options.stop ?? []);
}

const MAX_DRAFTS = 8;

function checkDrafts(mode: string, draftLength: number | undefined): number {
  if (!['off', 'fast', 'exact', 'chain'].includes(mode)) {
    throw new InvalidArgumentError(`decode mode must be 'off', 'fast', 'exact' or 'chain', got '${mode}'`);
  }
  if (mode !== 'chain') {
    if (draftLength !== undefined && draftLength !== 1) throw new InvalidArgumentError(`draftLength applies to decode mode 'chain' only`);
    return 1;
  }
  const k = draftLength ?? 3;
  if (!Number.isInteger(k) || k < 2 || k > MAX_DRAFTS) {
    throw new InvalidArgumentError(`draftLength must be an integer from 2 to ${MAX_DRAFTS}, got ${String(draftLength)}`);
  }
  return k;
}

function rate(count: number, ms: number): number {
  return ms > 0 ? (count * 1000) / ms : 0;
}

function now(): number {
  return performance.now();
}
