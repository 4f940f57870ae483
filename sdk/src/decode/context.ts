/** The KV prefix cache: what the engine's caches hold, so a prompt that extends the last one reuses them. */
import type { Backend, ForwardOutput } from '../backend.js';
import type { Tokenizer } from '../tokenizer/types.js';
import { modeledDraftCost, type DraftCounts } from './cost-model.js';
import { checkPromptIds } from './options.js';
import { fusesDrafting } from './readback.js';

/** What one KV sequence (the base's cache and its head's) holds. */
interface Sequence {
  /** Tokens whose K/V entries are in the base cache, position by position. */
  tokens: number[];
  /** Head rows are valid up to this position. */
  headCached: number;
  /** Length of the last prompt run here: a prompt that keeps all of it continues this conversation. */
  prompt: number;
  /** When it was last used (a counter), for least-recently-used eviction; 0 = never. */
  used: number;
}

/**
 * The engine with what its KV caches hold, so a prompt that extends a cached one reuses it. The backend keeps
 * `sequences` caches (conversations); each prefill picks one (`chooseSequence`) and selects it, so `cached` and
 * `headCached` are the selected sequence's. With a recycle head, head row p takes (base hidden state at p-1,
 * token at p); `headCached` says up to which position those rows are valid.
 */
export class Context<B extends Backend = Backend> {
  /** Position of the first row of the prefill's last base pass, so its hidden rows can be addressed. */
  lastPassStart = 0;
  /** Prompt tokens the last prefill took from the cache instead of running them. */
  reusedPrompt = 0;
  /** The WASM engine's passes, counted: what drafting costs where the clock stands still (see cost-model.ts). */
  draftCounts?: DraftCounts;
  private readonly sequences: Sequence[];
  private selected = 0;
  private uses = 0;
  private readonly draftCosts = new Map<string, DraftCost | undefined>();
  private readonly draftRecords = new Map<number, { rounds: number; tokens: number }>();

  constructor(
    readonly llama: B,
    readonly tokenizer: Tokenizer,
  ) {
    this.sequences = Array.from({ length: llama.sequences }, () => ({ tokens: [], headCached: 0, prompt: 0, used: 0 }));
  }

  /** Tokens whose K/V entries are in the selected sequence's base cache, position by position. */
  get cached(): number[] {
    return this.sequences[this.selected]!.tokens;
  }

  get headCached(): number {
    return this.sequences[this.selected]!.headCached;
  }

  set headCached(position: number) {
    this.sequences[this.selected]!.headCached = position;
  }

  /** What each KV sequence holds (tests, diagnostics): its tokens, and whether it is the selected one. */
  get cachedSequences(): { tokens: readonly number[]; selected: boolean }[] {
    return this.sequences.map((s, i) => ({ tokens: s.tokens, selected: i === this.selected }));
  }

  get capacity(): number {
    return this.llama.config.contextLength;
  }

  get hasHead(): boolean {
    return this.llama.recycleMaxBatch > 0;
  }

  /**
   * Runs the prompt through the model, reusing the cached prefix, and leaves the last token's logits
   * (and its hidden state in the engine's last row). With `allLogits`, returns a copy of every
   * position's logits and reuses nothing. `withHead` (recycled decoding): the head's rows are built too;
   * without, they are left where they end, for a later prefill that needs them to rebuild.
   */
  async prefill(ids: number[], allLogits = false, withHead = this.hasHead && !allLogits): Promise<Float32Array[]> {
    const { maxBatch, vocabSize } = this.llama.config;
    checkPromptIds(ids, vocabSize, this.capacity);
    await this.takeSequence(ids, allLogits);
    // Keep at least the last token to run, since its logits are what comes next. With the head, rerun from
    // where its rows end (the next row needs the base hidden state before it), and from before the first
    // changed token, whose head row was built with the old one.
    const prefix = commonPrefix(this.cached, ids);
    let start = allLogits ? 0 : Math.min(prefix, ids.length - 1);
    if (withHead) start = Math.min(start, this.headCached, Math.max(prefix - 1, 0));
    this.cached.length = start;
    // A head row stays valid while its token and the token before it do.
    this.headCached = Math.min(this.headCached, start, Math.max(prefix - 1, 0));
    this.reusedPrompt = start;
    this.sequences[this.selected]!.prompt = ids.length;
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
      if (withHead) await this.recycleRows(0, ids.slice(start + 1, Math.min(end + 1, ids.length)), start + 1, true);
      this.cached.push(...chunk);
      start = end;
    }
    return rows;
  }

  /**
   * Selects the sequence `ids` runs in (see `chooseSequence`; `fresh`: reusing nothing, the least recently used),
   * first copying into it the prefix another sequence holds.
   */
  private async takeSequence(ids: number[], fresh: boolean): Promise<void> {
    const oldest = leastRecentlyUsed(this.sequences);
    const choice = fresh ? { target: oldest, source: oldest } : chooseSequence(this.sequences, ids);
    this.select(choice.target);
    const target = this.sequences[choice.target]!;
    target.used = ++this.uses;
    if (choice.source === choice.target || !this.llama.copySequence) return;
    const source = this.sequences[choice.source]!;
    const positions = commonPrefix(source.tokens, ids);
    await this.llama.copySequence(choice.source, choice.target, positions);
    target.tokens = source.tokens.slice(0, positions);
    target.headCached = Math.min(source.headCached, positions - 1);
  }

  /**
   * Selects the least recently used sequence for passes that keep nothing worth reusing (embeddings), without
   * marking it used: the conversations in the other sequences stay cached.
   */
  selectScratchSequence(): void {
    this.select(leastRecentlyUsed(this.sequences));
  }

  private select(index: number): void {
    if (index !== this.selected) this.llama.selectSequence(index);
    this.selected = index;
  }

  /**
   * What drafting costs on this backend in units of a 1-token pass: one head row, and a full pass of k + 1
   * tokens. Timed once (fastest of a few tries) with passes at positions that hold nothing kept yet, in the least
   * recently used sequence; where the clock does not move while code runs (production Workers), counted instead
   * (`draftCounts`, the WASM engine's cost model), else undefined (as when the context is too short).
   * Call before a prefill: it overwrites the backend's last logits and hidden rows. Passes read back what decoding
   * will (`output`); where drafting runs as the backend's draftAndCheck, its one call is timed as the pass (head
   * rows included).
   */
  async draftCost(drafts: number, output: ForwardOutput): Promise<DraftCost | undefined> {
    const key = `${drafts} ${JSON.stringify(output)}`;
    if (this.draftCosts.has(key)) return this.draftCosts.get(key);
    const n = drafts + 1;
    const pos = Math.min(this.capacity - n, CALIBRATION_POSITION);
    let cost: DraftCost | undefined;
    // Without a head, only what a pass of n tokens costs (the grammar's drafts need no head).
    if (pos > 0 && n <= this.llama.config.maxBatch && (!this.hasHead || n <= this.llama.recycleMaxBatch)) {
      const { llama } = this;
      // In the sequence whose contents matter least.
      this.select(leastRecentlyUsed(this.sequences));
      const one = await fastest(() => llama.forward([0], pos, 0, output));
      if (this.hasHead && fusesDrafting(llama, output)) {
        // The 1-token pass above left the base hidden row the head starts from.
        const round = await fastest(() => llama.draftAndCheck!(0, [0], pos, drafts, 0, output));
        if (one > 0) cost = { head: 0, pass: round / one, source: 'measured' };
      } else {
        const pass = await fastest(() => llama.forward(new Array<number>(n).fill(0), pos, 0, output));
        const head = this.hasHead ? await fastest(() => llama.recycleForward('base', 0, [0], pos, 0, 'argmax')) : 0;
        if (one > 0) cost = { head: head / one, pass: pass / one, source: 'measured' };
      }
      // Those passes wrote cache entries from `pos` on, so nothing cached there may be reused.
      this.cached.length = Math.min(this.cached.length, pos);
      this.headCached = Math.min(this.headCached, pos - 1);
      // A pass that took 0 ms: the clock stands still.
      if (one === 0 && this.draftCounts) cost = modeledDraftCost(this.draftCounts, drafts);
    }
    this.draftCosts.set(key, cost);
    return cost;
  }

  /** Verified drafting rounds run with `drafts` head drafts on this context, and the tokens they yielded. */
  draftRecord(drafts: number): { rounds: number; tokens: number } {
    let record = this.draftRecords.get(drafts);
    if (!record) this.draftRecords.set(drafts, (record = { rounds: 0, tokens: 0 }));
    return record;
  }

  /** Verified rounds of grammar drafts (jump-forward) on this context: drafts checked, and kept. */
  readonly grammarRecord: GrammarRecord = { rounds: 0, checked: 0, kept: 0 };

  /**
   * Head rows at positions pos… for `tokens`, from consecutive base hidden rows starting at `fromRow`
   * of the last base pass, in batches the head takes. Leaves the last row's head logits (as `output` says) unless
   * `quiet`, and returns which row of the head's last pass is the last token's (its hidden state feeds a chain).
   */
  async recycleRows(fromRow: number, tokens: number[], pos: number, quiet = false, output: ForwardOutput = 'argmax'): Promise<number> {
    const batch = this.llama.recycleMaxBatch;
    let lastRow = 0;
    for (let i = 0; i < tokens.length; i += batch) {
      const part = tokens.slice(i, i + batch);
      const last = i + part.length === tokens.length;
      await this.llama.recycleForward('base', fromRow + i, part, pos + i, last && !quiet ? part.length - 1 : part.length, output);
      lastRow = part.length - 1;
    }
    if (tokens.length > 0) this.headCached = pos + tokens.length - 1;
    return lastRow;
  }
}

/**
 * Where a prompt runs: `target`, the sequence it runs in, and `source`, the sequence whose common prefix with it
 * is reused (copied into the target first when they differ). A sequence whose last prompt the new one keeps whole
 * holds this conversation: it continues there (the longest such prefix). Any other prompt starts a new branch in the
 * least recently used sequence, from the longest prefix any sequence shares with it; so turn n+1 of a conversation
 * reuses turn n's cache even when other conversations ran in between, and a system prompt shared by many is
 * copied rather than run again.
 */
export function chooseSequence(sequences: readonly Pick<Sequence, 'tokens' | 'prompt' | 'used'>[], ids: number[]): { target: number; source: number } {
  const prefixes = sequences.map((s) => commonPrefix(s.tokens, ids));
  let continued = -1;
  sequences.forEach((s, i) => {
    const keepsPrompt = prefixes[i]! > 0 && prefixes[i]! >= Math.min(s.prompt, s.tokens.length);
    if (keepsPrompt && (continued === -1 || prefixes[i]! > prefixes[continued]!)) continued = i;
  });
  if (continued !== -1) return { target: continued, source: continued };
  const target = leastRecentlyUsed(sequences);
  let source = target;
  prefixes.forEach((p, i) => {
    if (p > prefixes[source]!) source = i;
  });
  return { target, source };
}

function leastRecentlyUsed(sequences: readonly Pick<Sequence, 'used'>[]): number {
  let oldest = 0;
  sequences.forEach((s, i) => {
    if (s.used < sequences[oldest]!.used) oldest = i;
  });
  return oldest;
}

/** Grammar drafts checked by verified passes (each up to and including the first one rejected), and those kept. */
export interface GrammarRecord {
  rounds: number;
  checked: number;
  kept: number;
}

/** Relative costs of drafting, in 1-token passes: timed on this backend, or counted (cost-model.ts). */
export interface DraftCost {
  head: number;
  pass: number;
  source: 'measured' | 'modeled';
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

function commonPrefix(a: number[], b: number[]): number {
  let n = 0;
  while (n < a.length && n < b.length && a[n] === b[n]) n++;
  return n;
}
