/**
 * Constrained decoding over a fake model whose rows depend on the tokens before them (a hash of the prefix), with a
 * head right two times in three, on a vocabulary of every byte plus JSON-shaped pieces: every mode and sampling
 * setting gives valid output; exact/chain and jump-forward give plain decoding's tokens (greedy), or its
 * distribution (sampling); a backend that reads back only argmax/top-k is asked for whole rows under a grammar.
 */
import Ajv2020 from 'ajv/dist/2020.js';
import { describe, expect, it } from 'vitest';
import { byteVocab, utf8Bytes } from '../../../bench/grammar/walk.js';
import { hashOf, rowAfter as prefixRow, topOf } from '../../../test/fixtures/prefix-rows.js';
import type { Backend, ForwardOutput, TopCandidates } from '../backend.js';
import type { ModelConfig } from '../contract/config.js';
import { InvalidArgumentError, UnsupportedParameterError } from '../errors.js';
import { Context, decode } from '../generate.js';
import { grammarDraftCount } from './modes.js';
import type { ResponseFormat } from '../grammar/index.js';
import type { Tokenizer } from '../tokenizer/types.js';
import type { DecodeMode, GeneratedToken, GenerateOptions, GenerationStats } from '../types.js';

const PIECES = [
  ...Array.from({ length: 256 }, (_, b) => String.fromCharCode(b)),
  ...['{"', '"}', '":', '", "', '},', '{}', '[]', '[{', '}]', '"]', '":"', ' "', ': ', ', ', '\n  ', 'true', 'false', 'null', 'tru', 'e}'],
  ...['12', '0.', '.5', '-1', '1e', '"a', 'abc', 'name', '"name":', 'red', '"red"', 'blue"]', 'he', 'hello', 'id', '"id": ', 'tags', '"tags":["'],
  ...['é', '€', '😀', 'é"'].map(utf8Bytes),
];
const VOCAB = PIECES.length + 1; // + EOS
const EOS = PIECES.length;

function fakeTokenizer(): Tokenizer {
  const vocab = byteVocab(PIECES);
  const bytesOf = (ids: ArrayLike<number>) => Uint8Array.from(Array.from(ids).flatMap((id) => [...vocab.tokenToBytes(id)]));
  return {
    kind: 'gpt2',
    vocabSize: VOCAB,
    addBos: false,
    addEos: false,
    encode: () => [],
    decode: (ids) => new TextDecoder().decode(bytesOf(ids)),
    tokenToBytes: (id) => vocab.tokenToBytes(id),
    tokenText: (id) => PIECES[id] ?? '</s>',
    isEog: (id) => id === EOS,
  };
}

/** The logits after `prefix`: eighth steps in [0, 4), so ties happen. */
const rowAfter = (prefix: number[]) => prefixRow(prefix, VOCAB, 32, 8);

/** A model whose rows depend on the prefix; its head gives the base's own row two times in three. `lean`: reads back like WebGPU. */
class PrefixModel implements Backend {
  readonly config = { vocabSize: VOCAB, contextLength: 256, maxBatch: 8 } as ModelConfig;
  readonly recycleMaxBatch = 8;
  readonly sequences = 1;
  selectSequence(): void {}
  readonly maxTopK?: number;
  readonly candidates?: (row?: number) => TopCandidates;
  readonly draftAndCheck?: Backend['draftAndCheck'];
  passes = 0;
  /** Every full pass: its first position and its tokens. */
  readonly log: Array<{ pos: number; tokens: number[] }> = [];
  private tokens: number[] = [];
  private headPrefix: number[] = [];
  private rows: Float32Array[] = [];
  private headRows: Float32Array[] = [];
  private output: ForwardOutput = 'logits';
  private headOutput: ForwardOutput = 'logits';

  constructor(private readonly lean: boolean) {
    if (!lean) return;
    this.maxTopK = 256;
    this.candidates = (row = 0) => {
      if (typeof this.output !== 'object') throw new Error('the last pass kept no candidates');
      return topOf(this.rows[row]!, this.output.topK);
    };
    this.draftAndCheck = async (fromRow, headTokens, pos, drafts, logitsFrom, output) => {
      this.recycleForward('base', fromRow, headTokens, pos - headTokens.length + 1, headTokens.length - 1, 'argmax');
      const made = [this.recycleArgmax()];
      while (made.length < drafts) {
        this.recycleForward('head', 0, [made[made.length - 1]!], pos + made.length, 0, 'argmax');
        made.push(this.recycleArgmax());
      }
      this.forward([headTokens[headTokens.length - 1]!, ...made], pos, logitsFrom, output);
      return made;
    };
  }

  forward(tokens: ArrayLike<number>, pos: number, logitsFrom: number, output: ForwardOutput = 'logits'): void {
    this.tokens.length = pos;
    this.tokens.push(...Array.from(tokens));
    this.rows = Array.from({ length: tokens.length - logitsFrom }, (_, r) => rowAfter(this.tokens.slice(0, pos + logitsFrom + r + 1)));
    this.output = output;
    this.passes++;
    this.log.push({ pos, tokens: Array.from(tokens) });
  }

  logits(row = 0): Float32Array {
    if (this.lean && this.output !== 'logits') throw new Error('the last pass kept no logits');
    return this.rows[row]!;
  }

  argmax(row = 0): number {
    return topOf(this.rows[row]!, 1).ids[0]!;
  }

  recycleForward(source: 'base' | 'head', _fromRow: number, tokens: ArrayLike<number>, pos: number, logitsFrom: number, output: ForwardOutput = 'logits'): void {
    let prefix = source === 'head' ? this.headPrefix : this.tokens.slice(0, pos);
    this.headRows = [];
    for (let i = 0; i < tokens.length; i++) {
      prefix = [...prefix, tokens[i]!];
      // Right two times in three: the base's own row for the next token, else another row.
      if (i >= logitsFrom) this.headRows.push(hashOf(prefix) % 3 === 0 ? rowAfter([...prefix, -7]) : rowAfter(prefix));
    }
    this.headPrefix = prefix;
    this.headOutput = output;
  }

  recycleLogits(row = 0): Float32Array {
    if (this.lean && this.headOutput !== 'logits') throw new Error('the last head pass kept no logits');
    return this.headRows[row]!;
  }

  recycleArgmax(row = 0): number {
    return topOf(this.headRows[row]!, 1).ids[0]!;
  }

  free(): void {}
}

const tokenizer = fakeTokenizer();

function thrown(run: () => unknown): unknown {
  try {
    run();
  } catch (e) {
    return e;
  }
  return undefined;
}

async function generate(options: GenerateOptions & { lean?: boolean; prompt?: number[] }) {
  const model = new PrefixModel(options.lean ?? false);
  const tokens: GeneratedToken[] = [];
  let stats: GenerationStats | undefined;
  const mode = options.decode?.mode ?? 'off';
  const decodeOptions = { maxTokens: 48, ...options, decode: { draftLength: mode === 'chain' ? 3 : undefined, adaptive: false, ...options.decode } as GenerateOptions['decode'] };
  for await (const token of decode(new Context(model, tokenizer), options.prompt ?? [1, 2, 3], decodeOptions, (s) => (stats = s))) tokens.push(token);
  return { ids: tokens.map((t) => t.id), text: tokens.map((t) => t.text).join(''), tokens, stats: stats!, passes: model.passes };
}

const ajv = new Ajv2020.default({ strict: true, allErrors: true });

const FORMATS: Record<string, ResponseFormat> = {
  object: { type: 'json_object' },
  record: {
    type: 'json_schema',
    schema: {
      type: 'object',
      properties: {
        id: { type: 'integer', minimum: 1, maximum: 999 },
        name: { type: 'string', maxLength: 6 },
        tags: { type: 'array', items: { enum: ['red', 'blue', 'é'] }, minItems: 1, maxItems: 3 },
        score: { type: 'number', minimum: -1.5, maximum: 2 },
        ok: { type: 'boolean' },
      },
      required: ['id', 'name', 'tags'],
      additionalProperties: false,
    },
  },
  nested: {
    type: 'json_schema',
    schema: {
      type: 'object',
      properties: { a: { type: 'object', properties: { b: { type: 'array', items: { type: 'string', pattern: '^[a-c]{1,3}$' }, maxItems: 2 } }, required: ['b'] } },
      required: ['a'],
    },
  },
  gbnf: { type: 'grammar', grammar: 'root ::= "[" item ("," item)* "]"\nitem ::= [a-c]+ | "null" | root' },
};

function check(name: string, text: string): void {
  const format = FORMATS[name]!;
  if (format.type === 'grammar') {
    expect(text, text).toMatch(/^\[[a-c\[\],null]*\]$/);
    return;
  }
  const value: unknown = JSON.parse(text);
  if (format.type === 'json_object') expect(typeof value === 'object' && value !== null && !Array.isArray(value), text).toBe(true);
  else if (format.type === 'json_schema') {
    const validate = ajv.compile(format.schema as object);
    expect(validate(value), `${text}\n${ajv.errorsText(validate.errors)}`).toBe(true);
  }
}

const MODES: Array<{ mode: DecodeMode; jumpForward: boolean }> = [
  { mode: 'off', jumpForward: false },
  { mode: 'off', jumpForward: true },
  { mode: 'exact', jumpForward: false },
  { mode: 'exact', jumpForward: true },
  { mode: 'chain', jumpForward: false },
  { mode: 'chain', jumpForward: true },
];

describe('constrained decoding over a prefix-hash model', () => {
  for (const name of Object.keys(FORMATS)) {
    it(`${name}: valid in every mode; exact, chain and jump-forward give plain decoding's tokens (greedy)`, async () => {
      let headKept = 0;
      let grammarKept = 0;
      let grammarRejected = 0;
      let fastDrafts = 0;
      for (let p = 0; p < 6; p++) {
        const prompt = [p, 7, 11];
        for (const repeatPenalty of [1, 1.3]) {
          const base = { prompt, temperature: 0, repeatPenalty, responseFormat: FORMATS[name]! };
          const off = await generate({ ...base, decode: { mode: 'off', jumpForward: false } });
          expect(off.stats.finishReason, off.text).toBe('stop');
          check(name, off.text);
          for (const { mode, jumpForward } of MODES.slice(1)) {
            const out = await generate({ ...base, decode: { mode, jumpForward } });
            expect(out.ids, `${mode} jumpForward ${jumpForward}`).toEqual(off.ids);
            headKept += out.stats.recycled;
            grammarKept += out.stats.grammarKept!;
            grammarRejected += out.stats.grammarDrafted! - out.stats.grammarKept!;
            expect(out.tokens.filter((t) => t.source === 'grammar').length).toBe(out.stats.grammarKept);
            expect(out.tokens.filter((t) => t.source === 'recycled').length).toBe(out.stats.recycled);
            if (!jumpForward) expect(out.stats.grammarDrafted).toBe(0);
          }
          const fast = await generate({ ...base, decode: { mode: 'fast', jumpForward: true } });
          check(name, fast.text);
          fastDrafts += fast.tokens.filter((t) => t.source !== 'pass').length;
        }
      }
      expect(headKept, 'head drafts kept').toBeGreaterThan(10);
      expect(fastDrafts, 'fast mode kept drafts').toBeGreaterThan(5);
      expect(grammarKept, 'grammar drafts kept').toBeGreaterThan(name === 'record' || name === 'nested' ? 10 : 0);
      if (name !== 'gbnf') expect(grammarRejected, 'grammar drafts rejected').toBeGreaterThan(0);
    });
  }

  it('sampling: valid in every mode and setting, and the same as a whole-row backend on one that reads back argmax or top-k', async () => {
    const samplings: GenerateOptions[] = [
      { temperature: 0 },
      { temperature: 1, topK: 6 },
      { temperature: 0.7, topK: 4, topP: 0.8, minP: 0.1, repeatPenalty: 1.2 },
      { temperature: 1.5, topK: 0 },
    ];
    for (const sampling of samplings) {
      for (const { mode, jumpForward } of [...MODES, { mode: 'fast' as const, jumpForward: true }, { mode: 'fast' as const, jumpForward: false }]) {
        for (let seed = 0; seed < 4; seed++) {
          const options = { ...sampling, seed, responseFormat: FORMATS.record!, decode: { mode, jumpForward } };
          const whole = await generate(options);
          expect(whole.stats.finishReason).toBe('stop');
          check('record', whole.text);
          const lean = await generate({ ...options, lean: true });
          expect(lean.ids, `${mode} ${JSON.stringify(sampling)} seed ${seed}`).toEqual(whole.ids);
        }
      }
    }
  });

  it('sampling: exact and jump-forward draw from plain decoding\'s distribution', async () => {
    // The first tokens' joint outcome over many seeds, off against exact + jump-forward: a two-sample chi-square.
    const samples = 1200;
    const counts = [new Map<string, number>(), new Map<string, number>()];
    let kept = 0;
    const format: ResponseFormat = { type: 'json_schema', schema: { type: 'object', properties: { tags: { type: 'array', items: { enum: ['red', 'blue', 'hello'] } } }, required: ['tags'] } };
    for (const [i, decodeMode] of [{ mode: 'off' as const, jumpForward: false }, { mode: 'exact' as const, jumpForward: true }].entries()) {
      for (let seed = 0; seed < samples; seed++) {
        const out = await generate({ temperature: 1, topK: 8, topP: 1, minP: 0, seed, maxTokens: 8, responseFormat: format, decode: decodeMode });
        if (i === 1) kept += out.stats.grammarKept! + out.stats.recycled;
        const key = out.text.slice(0, 14);
        counts[i]!.set(key, (counts[i]!.get(key) ?? 0) + 1);
      }
    }
    expect(kept, 'drafts were kept').toBeGreaterThan(samples);
    let chi2 = 0;
    let df = -1;
    let pooled = [0, 0];
    for (const key of new Set([...counts[0]!.keys(), ...counts[1]!.keys()])) {
      const a = counts[0]!.get(key) ?? 0;
      const b = counts[1]!.get(key) ?? 0;
      if (a + b < 10) {
        pooled = [pooled[0]! + a, pooled[1]! + b];
        continue;
      }
      chi2 += (a - b) ** 2 / (a + b);
      df++;
    }
    if (pooled[0]! + pooled[1]! > 0) {
      chi2 += (pooled[0]! - pooled[1]!) ** 2 / (pooled[0]! + pooled[1]!);
      df++;
    }
    const z = 3.09; // 99.9th percentile (Wilson–Hilferty)
    expect(df).toBeGreaterThan(3);
    expect(chi2).toBeLessThan(df * (1 - 2 / (9 * df) + z * Math.sqrt(2 / (9 * df))) ** 3);
  });

  it('closes the output as maxTokens runs out, ends without a pass where nothing else can follow, and reports a cut', async () => {
    for (let p = 0; p < 8; p++) {
      for (const maxTokens of [36, 40, 48]) {
        const out = await generate({ prompt: [p, 5], temperature: 1.2, topK: 0, seed: p, maxTokens, responseFormat: FORMATS.record!, decode: { mode: 'exact' } });
        expect(out.stats.finishReason).toBe('stop');
        expect(out.ids.length).toBeLessThanOrEqual(maxTokens);
        check('record', out.text);
      }
      // Too short for the shortest record ({"id":1,"name":"","tags":["red"]}): cut.
      const cut = await generate({ prompt: [p, 5], temperature: 0, maxTokens: 4, responseFormat: FORMATS.record!, decode: { mode: 'exact' } });
      expect(cut.stats.finishReason).toBe('length');
      expect(cut.ids).toHaveLength(4);
    }
    // A format with one possible output: every token comes from the grammar's drafts, and no pass asks for the end.
    const fixed = await generate({ temperature: 0, responseFormat: { type: 'json_schema', schema: { const: { name: 'hello' } } } });
    expect(fixed.text).toBe('{"name":"hello"}');
    expect(fixed.stats.finishReason).toBe('stop');
    expect(fixed.stats.fullPasses).toBeLessThan(fixed.ids.length);
    expect(fixed.ids).not.toContain(EOS);
  });

  it('adaptive jump-forward drafts as many dictated tokens as pay on this backend, with the same output', async () => {
    const run = async (cost: { pass: number; head: number } | undefined, adaptive = true) => {
      const model = new PrefixModel(false);
      const context = new Context(model, tokenizer);
      context.draftCost = async () => cost;
      const outputs: number[][] = [];
      let drafted = 0;
      for (let p = 0; p < 6; p++) {
        const ids: number[] = [];
        const options = { maxTokens: 48, temperature: 0, responseFormat: FORMATS.record!, decode: { mode: 'off' as const, adaptive } };
        let stats: GenerationStats | undefined;
        for await (const t of decode(context, [p, 9], options, (s) => (stats = s))) ids.push(t.id);
        outputs.push(ids);
        drafted += stats!.grammarDrafted!;
      }
      return { outputs, drafted, record: context.grammarRecord };
    };
    const always = await run(undefined, false); // not adaptive: drafts everything dictated
    const free = await run({ pass: 1, head: 0 }); // a batched pass costs what one token does (a GPU)
    const costly = await run({ pass: 1.9, head: 0 }); // this engine on a small model: a 2-token pass costs 1.9
    // No cost known (a backend without a cost model where the clock stands still): nothing to judge by, so all are drafted.
    // (On the WASM engine the cost model stands in for the clock: cost-model.test.ts.)
    const unknown = await run(undefined);
    for (const other of [free, costly, unknown]) expect(other.outputs).toEqual(always.outputs);
    expect(free.drafted).toBe(always.drafted);
    // The fake model keeps about half of the dictated drafts: at 1.9 a pass they do not pay, so drafting stops after the judged rounds.
    expect(costly.record.kept / costly.record.checked).toBeLessThan(0.8);
    expect(costly.record.rounds).toBe(4);
    expect(costly.drafted).toBeLessThan(always.drafted / 3);
    expect(unknown.drafted).toBe(always.drafted);
  });

  it('records how many grammar drafts verified passes checked and kept, and nothing from fast mode', async () => {
    const model = new PrefixModel(false);
    const context = new Context(model, tokenizer);
    context.draftCost = async () => undefined;
    // The reference: each pass of x and drafts keeps the drafts that equal the output at their positions, and checks
    // them up to and including the first that does not.
    const expected = { rounds: 0, checked: 0, kept: 0 };
    for (let p = 0; p < 6; p++) {
      const prompt = [p, 3];
      const from = model.log.length;
      const ids: number[] = [];
      const options = { maxTokens: 48, temperature: 0, responseFormat: FORMATS.record!, decode: { mode: 'off' as const, adaptive: false } };
      for await (const t of decode(context, prompt, options, () => {})) ids.push(t.id);
      for (const { pos, tokens } of model.log.slice(from + 1)) {
        const drafts = tokens.slice(1);
        if (drafts.length === 0) continue;
        let kept = 0;
        while (kept < drafts.length && drafts[kept] === ids[pos - prompt.length + 1 + kept]) kept++;
        expected.rounds++;
        expected.kept += kept;
        expected.checked += Math.min(kept + 1, drafts.length);
      }
    }
    expect(expected.checked, 'some rounds rejected a draft before their last').toBeGreaterThan(expected.kept + 1);
    expect(expected.checked - expected.kept).toBeLessThan(expected.rounds);
    expect(context.grammarRecord).toEqual(expected);
    // fast keeps its drafts unchecked: they say nothing about what a model keeps.
    for (let p = 0; p < 3; p++) for await (const _ of decode(context, [p, 4], { maxTokens: 48, temperature: 0, responseFormat: FORMATS.record!, decode: { mode: 'fast' } }, () => {}));
    expect(context.grammarRecord).toEqual(expected);
  });

  it('judges grammar drafts against the head where it drafts, and never in fast mode', async () => {
    const run = async (mode: DecodeMode, record: { rounds: number; checked: number; kept: number }, headRecord?: { rounds: number; tokens: number }) => {
      const context = new Context(new PrefixModel(false), tokenizer);
      context.draftCost = async () => ({ pass: 1.3, head: 0 });
      Object.assign(context.grammarRecord, record);
      if (headRecord) Object.assign(context.draftRecord(1), headRecord);
      let stats: GenerationStats | undefined;
      const ids: number[] = [];
      for await (const t of decode(context, [5, 9], { maxTokens: 48, temperature: 0, responseFormat: FORMATS.record!, decode: { mode } }, (s) => (stats = s))) ids.push(t.id);
      return { ids, stats: stats! };
    };
    const halfKept = { rounds: 10, checked: 10, kept: 5 };
    // Half the dictated drafts kept, at 0.3 a draft: one a round (1.5 tokens for 1.3 passes) beats a plain pass…
    const plain = await run('off', halfKept);
    expect(plain.stats.grammarDrafted).toBeGreaterThan(0);
    // …but not a head that yields 1.9 tokens a round (1.46 per pass of cost): it drafts instead.
    const headed = await run('exact', halfKept, { rounds: 10, tokens: 19 });
    expect(headed.stats.grammarDrafted).toBe(0);
    expect(headed.stats.proposed).toBeGreaterThan(0);
    expect(headed.ids).toEqual(plain.ids);
    // A head that does not pay (1 token a round) stops, and the grammar's drafts take the rounds again.
    const stopped = await run('exact', halfKept, { rounds: 10, tokens: 10 });
    expect(stopped.stats.draftingStopped).toBe(true);
    expect(stopped.stats.grammarDrafted).toBeGreaterThan(0);
    expect(stopped.ids).toEqual(plain.ids);
    // fast drafts every dictated token whatever was kept before: each one is a token more per pass.
    const never = { rounds: 10, checked: 10, kept: 0 };
    expect((await run('off', never)).stats.grammarDrafted).toBe(0);
    const fast = await run('fast', never);
    const fastAlways = await run('fast', { rounds: 0, checked: 0, kept: 0 });
    expect(fast.stats.grammarDrafted).toBeGreaterThan(0);
    expect(fast.stats.grammarDrafted).toBe(fastAlways.stats.grammarDrafted);
  });

  it('grammarDraftCount: all until judged, then the count with the best expected tokens per cost', () => {
    const judged = (kept: number, checked: number) => ({ rounds: 10, kept, checked });
    expect(grammarDraftCount(5, undefined, 1, judged(0, 10), 1)).toBe(5);
    expect(grammarDraftCount(5, { pass: 1.9, head: 0 }, 1, { rounds: 3, kept: 0, checked: 3 }, 1)).toBe(5);
    // A GPU-like pass (nearly free per token) drafts all it is given.
    expect(grammarDraftCount(5, { pass: 1.02, head: 0 }, 1, judged(9, 10), 1)).toBe(5);
    // A CPU-like pass (0.9 a token) with half the drafts kept: none.
    expect(grammarDraftCount(5, { pass: 1.9, head: 0 }, 1, judged(5, 10), 1)).toBe(0);
    // 0.3 a token, 80% kept: three (1 + .8 + .64 + .512 tokens for 1.9 passes beats fewer or more).
    expect(grammarDraftCount(5, { pass: 1.3, head: 0 }, 1, judged(8, 10), 1)).toBe(3);
    expect(grammarDraftCount(5, { pass: 1.9, head: 0 }, 3, judged(8, 10), 1)).toBe(3); // chain's cost is per 3 drafts
    // Against a head that yields more per cost, none.
    expect(grammarDraftCount(5, { pass: 1.3, head: 0 }, 1, judged(8, 10), 1.6)).toBe(0);
  });

  it('refuses what it cannot enforce, at the call', () => {
    const context = new Context(new PrefixModel(false), tokenizer);
    const call = (responseFormat: unknown, extra: GenerateOptions = {}) => () => decode(context, [1], { ...extra, responseFormat: responseFormat as ResponseFormat }, () => {});
    expect(call({ type: 'json_schema', schema: { type: 'array', uniqueItems: true } })).toThrow(UnsupportedParameterError);
    const error = thrown(call({ type: 'json_schema', schema: { type: 'object', properties: { a: { type: 'string', not: { const: 'x' } } } } }));
    expect(error).toBeInstanceOf(UnsupportedParameterError);
    expect((error as UnsupportedParameterError).parameter).toBe('#/properties/a/not');
    // A oneOf that a written value could match twice (1 is an integer and a number).
    const overlap = thrown(call({ type: 'json_schema', schema: { type: 'object', properties: { v: { oneOf: [{ type: 'integer' }, { type: 'number' }] } } } }));
    expect((overlap as UnsupportedParameterError).parameter).toBe('#/properties/v/oneOf');
    expect(call({ type: 'json_schema', schema: { oneOf: [{ type: 'integer' }, { type: 'string' }] } })).not.toThrow();
    expect(call({ type: 'yaml' })).toThrow(InvalidArgumentError);
    expect(call({ type: 'grammar', grammar: 'root ::= "x' })).toThrow(InvalidArgumentError);
    expect(call('json')).toThrow(InvalidArgumentError);
    expect(call({ type: 'json_object' }, { decode: { mode: 'off', jumpForward: 'yes' as unknown as boolean } })).toThrow(/jumpForward/);
    expect(call({ type: 'text' })).not.toThrow();
  });
});
