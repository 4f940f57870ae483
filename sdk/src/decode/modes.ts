/**
 * The decode modes: `off` (one full pass per token) and the recycled ones, `fast`, `exact` and `chain`, as one
 * generator of tokens from the first picked one on, each with where it came from. Under a grammar every pick is
 * masked, and with jump-forward the text the grammar dictates is drafted and verified like the head's drafts.
 */
import { argmax, draw, type Candidates, type Sampler } from '../sampler.js';
import type { DecodeMode, TokenSource } from '../types.js';
import type { Context, DraftCost, GrammarRecord } from './context.js';
import { MAX_GRAMMAR_DRAFTS, type OutputGrammar } from './grammar.js';
import type { Readback, Step } from './readback.js';

/** What a decode mode did, for the stats. */
export interface DecodeCounters {
  fullPasses: number;
  /** Drafts the recycle head proposed, and those kept. */
  proposed: number;
  accepted: number;
  /** Drafts the grammar dictated (jump-forward), and those kept. */
  grammarDrafted: number;
  grammarKept: number;
  /** Verified drafting stopped because it cost more than it saved on this backend. */
  draftingStopped: boolean;
  /** The grammar completed the output: nothing but the end could follow, so no pass was asked for it. */
  completed: boolean;
}

/** How a generation decodes after its first token. */
export interface DecodePlan {
  mode: DecodeMode;
  /** Head drafts per pass (1 but for `chain`). */
  drafts: number;
  /** Judge whether drafting pays (`decode.adaptive`). */
  adaptive: boolean;
  /** What drafting costs on this backend, where measured (not where the clock stands still while code runs). */
  cost?: DraftCost;
  grammar?: OutputGrammar;
  /** Draft the text the grammar dictates (needs `grammar`). */
  jumpForward: boolean;
}

/**
 * What grammar drafts are judged against where the cost of a pass could not be measured (Workers): this engine's
 * WASM passes, where a 2-token pass costs 1.8–1.9 single ones (bench/README.md).
 */
const UNMEASURED_COST: DraftCost = { pass: 1.85, head: 0.25 };

/** Rounds of drafting seen before judging whether it pays. */
const JUDGE_AFTER_ROUNDS = 4;

/**
 * Tokens a round of head drafting yields per 1-token pass of cost, as seen so far on this context; 1 (a plain
 * pass) until judged.
 */
function headYield(cost: DraftCost | undefined, drafts: number, record: { rounds: number; tokens: number }): number {
  if (!cost || record.rounds < JUDGE_AFTER_ROUNDS) return 1;
  const perRound = record.tokens / record.rounds;
  return perRound / (cost.pass + cost.head * (perRound + drafts - 1));
}

/**
 * How many of the `available` tokens the grammar dictates to draft this round: all of them until a few rounds of
 * them were checked on this context (or where costs are not measured); then the count with the most expected tokens
 * per unit of pass cost, each draft kept at the rate seen so far (a pass of k + 1 tokens costs about
 * 1 + k·(pass - 1)/drafts 1-token passes), or none where that does not beat `rival` (a plain pass: 1; the head's drafts).
 */
export function grammarDraftCount(available: number, cost: DraftCost | undefined, drafts: number, record: GrammarRecord, rival: number): number {
  if (available === 0 || !cost || record.rounds < JUDGE_AFTER_ROUNDS) return available;
  const keep = record.checked > 0 ? record.kept / record.checked : 0;
  const perToken = Math.max(0, (cost.pass - 1) / drafts);
  let best = 0;
  let bestYield = rival;
  let expected = 1;
  for (let k = 1, p = 1; k <= available; k++) {
    p *= keep;
    expected += p;
    const value = expected / (1 + k * perToken);
    if (value > bestYield) (best = k), (bestYield = value);
  }
  return best;
}

/**
 * Whether verified drafting has produced tokens more cheaply than plain passes would: per round it yields
 * `tokensPerRound` tokens for one pass of k + 1 tokens and about (tokensPerRound + k - 1) head rows.
 */
export function draftingPays(cost: DraftCost, drafts: number, tokensPerRound: number): boolean {
  return tokensPerRound >= cost.pass + cost.head * (tokensPerRound + drafts - 1);
}

/**
 * Decoding from the first picked token. Each round: the token x at position P is known (and yielded); drafts for
 * the positions after it come from the grammar (the text it dictates, with jump-forward) or else from the recycle
 * head (given the base hidden state at P-1 and x; it feeds its own hidden state back after the first); one batched
 * full pass runs x and the drafts. `fast` keeps the drafts unchecked (the paper); the others keep the longest prefix
 * the full pass agrees with, plus the full pass's own token where it disagrees, so the output is what plain decoding
 * gives (with sampling: in distribution). Without drafts a round is a plain 1-token pass.
 */
export async function* decodeTokens(context: Context, first: Step, readback: Readback, history: number[], counters: DecodeCounters, plan: DecodePlan): AsyncGenerator<Step> {
  const { llama } = context;
  const { sampler } = readback;
  const { mode, grammar } = plan;
  // The grammar whose dictated text is drafted, with jump-forward.
  const dictating = plan.jumpForward ? grammar : undefined;
  let head = mode !== 'off';
  let x = first;
  // Head rows still to run: base hidden rows from `fromRow` paired with these tokens (the last is x). The first
  // pairs the prompt's last hidden state (h_{P-1}) with the first generated token.
  let fromRow = context.cached.length - 1 - context.lastPassStart;
  let headTokens = [x.id];
  // What head and grammar drafting yielded so far on this context, earlier generations included.
  const record = context.draftRecord(plan.drafts);
  const { grammarRecord } = context;
  // Grammar drafts are judged against this cost; `fast` keeps drafts unchecked (each one is a token more per pass),
  // so it drafts all it has.
  const judged = mode === 'fast' || !plan.adaptive ? undefined : (plan.cost ?? UNMEASURED_COST);
  for (;;) {
    grammar?.accept(x.id);
    yield x;
    if (grammar?.complete) {
      counters.completed = true;
      return;
    }
    if (head && plan.cost && record.rounds >= JUDGE_AFTER_ROUNDS && !draftingPays(plan.cost, plan.drafts, record.tokens / record.rounds)) {
      // Plain passes from here on: the output is the same, and they are cheaper on this backend.
      counters.draftingStopped = true;
      head = false;
    }
    const pos = context.cached.length;
    // x and its drafts run as one batch, which a backend may cap (WebGPU: 8 tokens).
    const room = Math.min(context.capacity - pos - 1, llama.config.maxBatch - 1);
    if (room < 0) return;
    const dictated = dictating?.drafts(Math.min(room, MAX_GRAMMAR_DRAFTS)) ?? [];
    const rival = head ? headYield(plan.cost, plan.drafts, record) : 1;
    const forced = dictated.slice(0, grammarDraftCount(dictated.length, judged, plan.drafts, grammarRecord, rival));
    const headDrafting = head && forced.length === 0;
    let guesses = forced;
    if (headDrafting && readback.fusesDrafting && room > 0 && headTokens.length <= llama.recycleMaxBatch) {
      // One round trip for the head rows, the drafts and their check (which reads back picks or candidates alone).
      const output = readback.output as Exclude<typeof readback.output, 'logits'>;
      const count = Math.min(plan.drafts, room);
      guesses = await llama.draftAndCheck!(fromRow, headTokens, pos, count, mode === 'fast' ? count : 0, output);
      context.headCached = pos;
    } else {
      if (headDrafting) guesses = await draftTokens(context, fromRow, headTokens, pos, Math.min(plan.drafts, room), grammar);
      // The head's cache keeps up with the output while grammar drafts take the round.
      else if (head) await context.recycleRows(fromRow, headTokens, pos - headTokens.length + 1, true);
      await llama.forward([x.id, ...guesses], pos, mode === 'fast' ? guesses.length : 0, readback.output);
    }
    counters.fullPasses++;
    context.cached.push(x.id);
    const source: TokenSource = headDrafting ? 'recycled' : 'grammar';
    if (headDrafting) counters.proposed += guesses.length;
    else counters.grammarDrafted += guesses.length;

    let kept = 0;
    let next: Step | undefined;
    while (!next) {
      if (kept === guesses.length) {
        // `fast` kept logits for the last row alone.
        next = readback.step(mode === 'fast' ? 0 : kept, history, grammar?.next());
        break;
      }
      // `fast` keeps every draft unchecked; the others keep a draft where the full pass picks it too.
      let verdict = guesses[kept]!;
      let logprobs;
      if (mode !== 'fast') {
        const allowed = grammar?.next();
        verdict = sampler.greedy ? readback.pick(kept, history, allowed) : verify(sampler, readback.distribution(kept, history, allowed), verdict);
        logprobs = readback.logprobsAt(kept, verdict);
        if (verdict !== guesses[kept]) {
          next = { id: verdict, source: 'pass', logprobs };
          break;
        }
      }
      if (headDrafting) counters.accepted++;
      else counters.grammarKept++;
      context.cached.push(verdict);
      kept++;
      grammar?.accept(verdict);
      yield { id: verdict, source, logprobs };
      if (grammar?.complete) {
        counters.completed = true;
        return;
      }
    }
    x = next;
    headTokens = [...guesses.slice(0, kept), x.id];
    fromRow = 0;
    if (mode !== 'fast' && headDrafting) {
      record.rounds++;
      record.tokens += kept + 1;
    } else if (mode !== 'fast' && guesses.length > 0) {
      grammarRecord.rounds++;
      grammarRecord.kept += kept;
      grammarRecord.checked += Math.min(kept + 1, guesses.length);
    }
  }
}

/**
 * Runs the head rows for `headTokens` (ending at `pos`), then drafts `count` tokens by argmax, chaining the head;
 * under a grammar, the best token it allows at each draft's position (which needs the head's whole logits row).
 */
async function draftTokens(context: Context, fromRow: number, headTokens: number[], pos: number, count: number, grammar: OutputGrammar | undefined): Promise<number[]> {
  const { llama } = context;
  const output = grammar ? 'logits' : 'argmax';
  let headRow = await context.recycleRows(fromRow, headTokens, pos - headTokens.length + 1, false, output);
  const guesses: number[] = [];
  let state = grammar?.state;
  while (guesses.length < count) {
    if (guesses.length > 0) {
      await llama.recycleForward('head', headRow, [guesses[guesses.length - 1]!], pos + guesses.length, 0, output);
      headRow = 0;
    }
    if (!state) {
      guesses.push(llama.recycleArgmax(0));
      continue;
    }
    const guess = argmax(llama.recycleLogits(0), grammar!.allowed(state, grammar!.decided + guesses.length));
    guesses.push(guess);
    state = state.advance(guess)!;
    // Past a complete output only the end can follow, which the decode loop takes without a pass.
    if (state.isComplete()) break;
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
  const pDraft = at === -1 ? 0 : p.probs[at]!;
  if (sampler.random.next() < pDraft) return draft;
  const rest = { ids: p.ids.filter((_, i) => i !== at), probs: p.probs.filter((_, i) => i !== at) };
  const mass = 1 - pDraft;
  return draw({ ids: rest.ids, probs: rest.probs.map((q) => q / mass) }, sampler.random.next());
}
