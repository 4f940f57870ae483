import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import { beforeAll, describe, expect, it } from 'vitest';
import { qwenVocab, sdkTokenizer, VOCAB_SIZES } from '../../../bench/grammar/vocabularies.js';
import { byteVocab, maskHas, maskIds, randomWalk, utf8Bytes } from '../../../bench/grammar/walk.js';
import { UnsupportedParameterError } from '../errors.js';
import type { Tokenizer } from '../tokenizer/types.js';
import { compileConstraint, type ConstraintState, type ResponseFormat } from './constraint.js';
import type { ConstraintVocab } from './token-trie.js';

/** The brute-force reference: a token is allowed iff stepping its own bytes from the state survives (no trie, no caches). */
function bruteForceMask(state: ConstraintState, vocab: ConstraintVocab): number[] {
  const ids: number[] = [];
  for (let id = 0; id < vocab.vocabSize; id++) if (state.allows(id)) ids.push(id);
  return ids;
}

/** Every single byte, the JSON punctuation in combinations, whole and split UTF-8 characters: 400-odd tokens. */
const SMALL_PIECES = [
  ...Array.from({ length: 256 }, (_, b) => String.fromCharCode(b)),
  ...['{"', '"}', '":', '", "', '},', '{}', '[]', '[{', '}]', '"]', '":"', ' "', ': ', ', ', '\n  ', 'true', 'false', 'null', 'tru', 'e}', '12', '0.', '.5', '-1', '1e', 'e+', '\\"', '\\u00', '41', '"a', 'abc', 'ab"', 'name', '"name":', 'red', '"red"', 'blue"]', 'he', 'hello', 'hello world', 'abcd', 'x y z'],
  ...['é', 'ü', '€', '😀', '日本', 'é"', '"é'].map(utf8Bytes),
  // Split characters (single bytes such as \xC3 are among the 256 above).
  '\xE2\x82', '\xF0\x9F', '\x98\x80', '\xA9"', '\xAC"',
];

const SMALL_FORMATS: Record<string, ResponseFormat> = {
  object: { type: 'json_object' },
  schema: {
    type: 'json_schema',
    schema: {
      type: 'object',
      properties: {
        name: { type: 'string', maxLength: 4 },
        colors: { type: 'array', items: { enum: ['red', 'blue'] }, maxItems: 3 },
        n: { type: 'number', minimum: -1.5, maximum: 12 },
        ok: { type: 'boolean' },
      },
      required: ['name', 'n'],
    },
  },
  recursive: { type: 'json_schema', schema: { type: 'object', properties: { next: { anyOf: [{ $ref: '#' }, { type: 'null' }] } }, required: ['next'] } },
  utf8: { type: 'json_schema', schema: { type: 'string', pattern: '^[é€😀]{2,3}x?$' } },
  gbnf: { type: 'grammar', grammar: 'root ::= "[" item ("," item)* "]"\nitem ::= [a-c]+ | "é" | root' },
};

describe('masks on a small vocabulary agree with a brute-force check of every token', () => {
  const vocab = byteVocab(SMALL_PIECES);
  const eos = vocab.vocabSize - 1;

  it.each(Object.keys(SMALL_FORMATS))('%s', (name) => {
    const constraint = compileConstraint(SMALL_FORMATS[name]!, vocab)!;
    let checked = 0;
    for (let seed = 1; seed <= 12; seed++) {
      const walk = randomWalk(constraint.start(), vocab, seed, 30, (state) => {
        const fromMask = maskIds(state.mask());
        expect(fromMask).toEqual(bruteForceMask(state, vocab));
        expect(state.allowedCount()).toBe(fromMask.length);
        expect(maskHas(state.mask(), eos)).toBe(state.canEnd());
        expect(state.forced()).toBe(fromMask.length === 1 ? fromMask[0] : undefined);
        // Closing tokens are allowed tokens.
        for (const id of maskIds(state.closingMask())) expect(maskHas(state.mask(), id)).toBe(true);
        // An upper bound on what any allowed token leaves to close, so a budget that large filters nothing.
        const farthest = Math.max(0, ...fromMask.filter((id) => id !== eos).map((id) => state.advance(id)!.bytesToClose()));
        expect(state.farthestAfter()).toBeGreaterThanOrEqual(farthest);
        expect(maskIds(state.maskWithin(state.farthestAfter()) ?? new Uint32Array(0))).toEqual(fromMask);
        // Tokens within a budget: those whose next state completes in that many bytes (the end where it may end).
        for (const budget of [-1, 0, 2, state.bytesToClose(), state.bytesToClose() + 3]) {
          const within = fromMask.filter((id) => id === eos || state.advance(id)!.bytesToClose() <= budget);
          expect(maskIds(state.maskWithin(budget) ?? new Uint32Array(0))).toEqual(within);
        }
        checked++;
      });
      expect(walk.ended).toBe(true);
      new TextDecoder('utf-8', { fatal: true }).decode(walk.bytes); // never invalid UTF-8
    }
    expect(checked).toBeGreaterThan(50);
  });

  it('a token holding half a character is followed only by the rest of it', () => {
    const constraint = compileConstraint(SMALL_FORMATS.utf8!, vocab)!;
    const lead = SMALL_PIECES.indexOf('\xC3'); // first byte of é
    const afterLead = constraint.start().advance(SMALL_PIECES.indexOf('"'))!.advance(lead)!;
    // Only the continuation byte: not '\xA9"', which would close the string after one character (the pattern needs two).
    expect(maskIds(afterLead.mask()).map((id) => SMALL_PIECES[id]!)).toEqual(['\xA9']);
    // é + € + the closing quote, from split pieces.
    let state = afterLead;
    for (const piece of ['\xA9', '\xE2\x82']) state = state.advance(SMALL_PIECES.indexOf(piece))!;
    expect(state.canEnd()).toBe(false);
    expect(maskIds(state.mask()).map((id) => SMALL_PIECES[id]!)).toEqual(['\xAC', '\xAC"']);
    state = state.advance(SMALL_PIECES.indexOf('\xAC"'))!;
    expect(state.canEnd()).toBe(true);
  });
});

describe('hostile formats get typed errors, not crashes or hangs', () => {
  const vocab = byteVocab(SMALL_PIECES);
  const code = (format: ResponseFormat): string | undefined => {
    try {
      compileConstraint(format, vocab);
      return undefined;
    } catch (e) {
      return (e as { code?: string }).code ?? String(e);
    }
  };

  it('refuses nesting past the limits', () => {
    let schema: Record<string, unknown> = { type: 'string' };
    for (let i = 0; i < 100; i++) schema = { type: 'array', items: schema };
    expect(code({ type: 'json_schema', schema })).toBe('INVALID_ARGUMENT');
    for (let i = 0; i < 20_000; i++) schema = { type: 'array', items: schema }; // deeper than JSON.stringify goes
    expect(code({ type: 'json_schema', schema })).toBe('INVALID_ARGUMENT');
    expect(code({ type: 'grammar', grammar: `root ::= ${'('.repeat(5000)}"x"${')'.repeat(5000)}` })).toBe('INVALID_ARGUMENT');
    expect(code({ type: 'json_schema', schema: { type: 'string', pattern: `${'('.repeat(5000)}a${')'.repeat(5000)}` } })).toBe('INVALID_ARGUMENT');
  });

  it('refuses automata past the size limit, and compiles large enums as a trie', () => {
    const big = { type: 'array', items: { type: 'object', properties: { a: { type: 'string', maxLength: 50 } }, required: ['a'] }, maxItems: 1000 };
    expect(code({ type: 'json_schema', schema: big })).toBe('INVALID_ARGUMENT');
    const values = Array.from({ length: 5000 }, (_, i) => `value-${i}`);
    const constraint = compileConstraint({ type: 'json_schema', schema: { enum: values } }, vocab)!;
    const state = [...'"value-4321"'].reduce((s, c) => s.advance(SMALL_PIECES.indexOf(c))!, constraint.start());
    expect(state.isComplete()).toBe(true);
  });
});

describe('forced tokens', () => {
  it('is the one allowed token, and undefined when there are several', () => {
    const pieces = ['{"a":', '{', '"a":', '1', '}', '1}', 'x'];
    const vocab = byteVocab(pieces);
    const id = (p: string) => pieces.indexOf(p);
    const constraint = compileConstraint({ type: 'json_schema', schema: { type: 'object', properties: { a: { const: 1 } }, required: ['a'] } }, vocab)!;
    const start = constraint.start();
    expect(start.forced()).toBeUndefined(); // '{"a":' or '{'
    const brace = start.advance(id('{'))!;
    expect(brace.forced()).toBe(id('"a":'));
    const key = brace.advance(id('"a":'))!;
    expect(key.forced()).toBeUndefined(); // '1' or '1}'
    const one = key.advance(id('1'))!;
    expect(one.forced()).toBe(id('}'));
    const done = one.advance(id('}'))!;
    expect(done.forced()).toBe(pieces.length); // only EOS
    expect(done.isComplete()).toBe(true);
    expect(done.advance(pieces.length)!.forced()).toBeUndefined();
  });
});

describe('GBNF on a real vocabulary', () => {
  let tok: Tokenizer;
  beforeAll(() => {
    tok = sdkTokenizer(qwenVocab(VOCAB_SIZES['49k']));
  });

  const ARITHMETIC = `
# Integer arithmetic with parentheses.
root ::= expr
expr ::= term (("+" | "-") term)*
term ::= num
       | "(" expr ")"
num  ::= [0-9]{1,3}
`;

  it('random walks give sentences of the grammar', () => {
    const constraint = compileConstraint({ type: 'grammar', grammar: ARITHMETIC }, tok)!;
    const sentence = /^(?:[0-9]{1,3}|[()+\-])+$/;
    for (let seed = 1; seed <= 6; seed++) {
      const text = new TextDecoder().decode(randomWalk(constraint.start(), tok, seed, 30).bytes);
      expect(text).toMatch(sentence);
      // Balanced parentheses, and evaluable as JavaScript.
      expect(Number.isInteger(Function(`"use strict"; return (${text.replace(/\b0+(\d)/g, '$1')});`)())).toBe(true);
    }
  });

  it('reads llama.cpp-style grammars: comments, groups over lines, "|" continuations, escapes, bounded repeats', () => {
    const grammar = `
# a list of people, one per line
root ::= ( person "\\n" )+   # at least one
person ::= name_part (" " name_part){0,2} ":" ws age
name_part ::= [A-Z] [a-z\\u00e0-\\u00ff]{1,8}
age ::= [1-9] [0-9]? |
  "100"
ws ::= | " " | "\\t"
`;
    const constraint = compileConstraint({ type: 'grammar', grammar }, tok)!;
    const line = /^[A-Z][a-zà-ÿ]{1,8}( [A-Z][a-zà-ÿ]{1,8}){0,2}:[ \t]?([1-9][0-9]?|100)$/u;
    for (let seed = 1; seed <= 4; seed++) {
      const text = new TextDecoder().decode(randomWalk(constraint.start(), tok, seed, 30).bytes);
      expect(text.endsWith('\n')).toBe(true);
      for (const l of text.slice(0, -1).split('\n')) expect(l).toMatch(line);
    }
  });

  it('refuses left recursion, token references and bad syntax, with typed errors', () => {
    expect(() => compileConstraint({ type: 'grammar', grammar: 'root ::= root "x" | "y"' }, tok)).toThrow(/left-recursive/);
    expect(() => compileConstraint({ type: 'grammar', grammar: 'root ::= <think> "x"' }, tok)).toThrow(UnsupportedParameterError);
    expect(() => compileConstraint({ type: 'grammar', grammar: 'root ::= "x' }, tok)).toThrow(/unterminated string at line 1/);
    expect(() => compileConstraint({ type: 'grammar', grammar: 'root ::= item' }, tok)).toThrow(/undefined rule "item"/);
    expect(() => compileConstraint({ type: 'grammar', grammar: 'start ::= "x"' }, tok)).toThrow(/no rule named "root"/);
    expect(compileConstraint({ type: 'grammar', grammar: 'start ::= "x"', root: 'start' }, tok)).not.toBeNull();
  });
});

describe('memory', () => {
  it("preparing Qwen3's 151k vocabulary keeps ~10 MB, not an array per token (a Worker has 128 MB)", () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const used = () => {
      gc();
      gc();
      const m = process.memoryUsage();
      return m.heapUsed + m.arrayBuffers;
    };
    const tok = sdkTokenizer(qwenVocab());
    const before = used();
    compileConstraint({ type: 'json_object' }, tok); // renders every token's bytes for the trie
    const grown = (used() - before) / 2 ** 20;
    // The trie (~5.5 MB), the compiled grammar and the tokenizer's compact cache of the pieces (~1 MB).
    expect(grown).toBeLessThan(14);
  });
});
