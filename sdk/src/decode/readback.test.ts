/**
 * The decode loop over a backend that reads back only what sampling needs (the argmax, or the top-k candidates) and
 * drafts and checks in one call, as the WebGPU backend does, against the same backend reading whole rows in separate
 * passes: the same tokens in every mode. A fake backend makes rows from a hash of the prefix (with ties and flat
 * enough that sampling keeps several candidates) and a head that is right two times in three, so drafts are both
 * kept and rejected.
 */
import { describe, expect, it } from 'vitest';
import { hashOf, rowAfter as prefixRow, topOf } from '../../../test/fixtures/prefix-rows.js';
import type { Backend, ForwardOutput, TopCandidates } from '../backend.js';
import type { ModelConfig } from '../contract/config.js';
import { Context, decode } from '../generate.js';
import type { Tokenizer } from '../tokenizer/types.js';
import type { DecodeMode, GenerateOptions } from '../types.js';

const VOCAB = 12;

/** The logits after `prefix`: quarter steps in [0, 3), so ties happen. */
const rowAfter = (prefix: number[]) => prefixRow(prefix, VOCAB, 12, 4);

/** A backend whose rows depend on the tokens before them; `lean` reads back like the WebGPU one. */
class PrefixBackend implements Backend {
  readonly config = { vocabSize: VOCAB, contextLength: 64, maxBatch: 8 } as ModelConfig;
  readonly recycleMaxBatch = 8;
  readonly sequences = 1;
  selectSequence(): void {}
  readonly maxTopK?: number;
  readonly candidates?: (row?: number) => TopCandidates;
  readonly draftAndCheck?: Backend['draftAndCheck'];
  readbacks = 0;
  private tokens: number[] = [];
  /** The tokens up to the last head row: a chained head pass continues them. */
  private headPrefix: number[] = [];
  private rows: Float32Array[] = [];
  private output: ForwardOutput = 'logits';
  private drafts: number[] = [];
  /** Position of the last base pass's first row, to check which hidden state each head row reads. */
  private passStart = 0;

  constructor(lean: boolean) {
    if (!lean) return;
    this.maxTopK = 256;
    this.candidates = (row = 0) => {
      if (typeof this.output !== 'object') throw new Error('the last pass kept no candidates');
      return topOf(this.rows[row]!, this.output.topK);
    };
    this.draftAndCheck = async (fromRow, headTokens, pos, drafts, logitsFrom, output) => {
      const readbacks = this.readbacks;
      this.recycleForward('base', fromRow, headTokens, pos - headTokens.length + 1, headTokens.length - 1);
      const made = [this.recycleArgmax()];
      while (made.length < drafts) {
        this.recycleForward('head', 0, [made[made.length - 1]!], pos + made.length, 0);
        made.push(this.recycleArgmax());
      }
      this.forward([headTokens[headTokens.length - 1]!, ...made], pos, logitsFrom, output);
      this.readbacks = readbacks + 1; // one submission
      return made;
    };
  }

  forward(tokens: ArrayLike<number>, pos: number, logitsFrom: number, output: ForwardOutput = 'logits'): void {
    if (typeof output === 'object' && !this.candidates) throw new Error('a whole-row backend was asked for candidates');
    this.passStart = pos;
    this.tokens.length = pos;
    this.tokens.push(...Array.from(tokens));
    this.rows = Array.from({ length: tokens.length - logitsFrom }, (_, r) => rowAfter(this.tokens.slice(0, pos + logitsFrom + r + 1)));
    this.output = output;
    this.readbacks++;
  }

  logits(row = 0): Float32Array {
    // Like WASM, a whole-row backend keeps logits whatever it was asked.
    if (this.output !== 'logits' && this.candidates) throw new Error('the last pass kept no logits');
    return this.rows[row]!;
  }

  argmax(row = 0): number {
    return topOf(this.rows[row]!, 1).ids[0]!;
  }

  recycleForward(source: 'base' | 'head', fromRow: number, tokens: ArrayLike<number>, pos: number, logitsFrom: number): void {
    // Head row p pairs the token at p with the base hidden state at p - 1.
    if (source === 'base' && this.passStart + fromRow !== pos - 1) throw new Error(`head row ${pos} read the hidden state at ${this.passStart + fromRow}`);
    let prefix = source === 'head' ? this.headPrefix : this.tokens.slice(0, pos);
    this.drafts = [];
    for (let i = 0; i < tokens.length; i++) {
      prefix = [...prefix, tokens[i]!];
      const best = topOf(rowAfter(prefix), 2).ids;
      if (i >= logitsFrom) this.drafts.push(hashOf(prefix) % 3 === 0 ? best[1]! : best[0]!); // right two times in three
    }
    this.headPrefix = prefix;
    this.readbacks++;
  }

  recycleLogits(): Float32Array {
    throw new Error('the decode loop drafts by argmax');
  }

  recycleArgmax(row = 0): number {
    return this.drafts[row]!;
  }

  free(): void {}
}

const tokenizer = { isEog: () => false, tokenToBytes: () => new Uint8Array([0x61]) } as unknown as Tokenizer;

async function generate(lean: boolean, mode: DecodeMode, options: GenerateOptions) {
  const backend = new PrefixBackend(lean);
  const tokens: number[] = [];
  let stats = { proposed: 0, recycled: 0 };
  const decodeOptions = { maxTokens: 16, ...options, decode: { mode, draftLength: mode === 'chain' ? 3 : undefined, adaptive: false } };
  for await (const token of decode(new Context(backend, tokenizer), [1, 2, 3], decodeOptions, (s) => (stats = s))) tokens.push(token.id);
  return { tokens, stats, readbacks: backend.readbacks };
}

describe('decode over a backend that reads back picks or top-k candidates and drafts in one call', () => {
  const samplings: GenerateOptions[] = [
    { temperature: 0 },
    { temperature: 1, topK: 6 },
    { temperature: 0.7, topK: 4, topP: 0.8, minP: 0.1 },
    { temperature: 1.5, topK: 40 }, // past the vocabulary: all of it
  ];
  for (const sampling of samplings) {
    it(`gives the whole-row tokens: ${JSON.stringify(sampling)}`, async () => {
      let kept = 0;
      let rejected = 0;
      for (const mode of ['off', 'fast', 'exact', 'chain'] as const) {
        for (let seed = 0; seed < 25; seed++) {
          const lean = await generate(true, mode, { ...sampling, seed });
          const whole = await generate(false, mode, { ...sampling, seed });
          expect(lean.tokens, `${mode} seed ${seed}`).toEqual(whole.tokens);
          if (mode === 'exact' || mode === 'chain') {
            kept += lean.stats.recycled;
            rejected += lean.stats.proposed - lean.stats.recycled;
            expect(lean.readbacks, 'one round trip a round').toBeLessThan(whole.readbacks);
          }
        }
      }
      expect(kept, 'drafts kept').toBeGreaterThan(20);
      expect(rejected, 'drafts rejected').toBeGreaterThan(20);
    });
  }
});
