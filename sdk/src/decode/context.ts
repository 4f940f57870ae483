/** The KV prefix cache: what the engine's caches hold, so a prompt that extends the last one reuses them. */
import type { Backend, ForwardOutput } from '../backend.js';
import type { Tokenizer } from '../tokenizer/types.js';
import { checkPromptIds } from './options.js';
import { fusesDrafting } from './readback.js';

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
  /** Prompt tokens the last prefill took from the cache instead of running them. */
  reusedPrompt = 0;
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
    checkPromptIds(ids, vocabSize, this.capacity);
    // Keep at least the last token to run, since its logits are what comes next. With a head, rerun from
    // where its rows end (the next row needs the base hidden state before it), and from before the first
    // changed token, whose head row was built with the old one.
    const prefix = commonPrefix(this.cached, ids);
    let start = allLogits ? 0 : Math.min(prefix, ids.length - 1);
    if (this.hasHead) start = Math.min(start, this.headCached, Math.max(prefix - 1, 0));
    this.cached.length = start;
    this.headCached = Math.min(this.headCached, start);
    this.reusedPrompt = start;
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
    // Without a head, only what a pass of n tokens costs (the grammar's drafts need no head).
    if (pos > 0 && n <= this.llama.config.maxBatch && (!this.hasHead || n <= this.llama.recycleMaxBatch)) {
      const { llama } = this;
      const one = await fastest(() => llama.forward([0], pos, 0, output));
      if (this.hasHead && fusesDrafting(llama, output)) {
        // The 1-token pass above left the base hidden row the head starts from.
        const round = await fastest(() => llama.draftAndCheck!(0, [0], pos, drafts, 0, output));
        if (one > 0) cost = { head: 0, pass: round / one };
      } else {
        const pass = await fastest(() => llama.forward(new Array<number>(n).fill(0), pos, 0, output));
        const head = this.hasHead ? await fastest(() => llama.recycleForward('base', 0, [0], pos, 0, 'argmax')) : 0;
        if (one > 0) cost = { head: head / one, pass: pass / one };
      }
      // Those passes wrote cache entries from `pos` on, so nothing cached there may be reused.
      this.cached.length = Math.min(this.cached.length, pos);
      this.headCached = Math.min(this.headCached, pos - 1);
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

/** Grammar drafts checked by verified passes (each up to and including the first one rejected), and those kept. */
export interface GrammarRecord {
  rounds: number;
  checked: number;
  kept: number;
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

function commonPrefix(a: number[], b: number[]): number {
  let n = 0;
  while (n < a.length && n < b.length && a[n] === b[n]) n++;
  return n;
}
