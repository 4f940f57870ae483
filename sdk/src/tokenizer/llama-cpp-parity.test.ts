/**
 * Token ids and detokenized text must equal llama.cpp's (node-llama-cpp 3.22.1) for the same GGUF vocabulary, over
 * a corpus of 300+ texts (test/fixtures/tokenizer-corpus.ts) and random mixtures: for the real vocabularies as
 * convert_hf_to_gguf.py writes them (Llama 3, Qwen3, Gemma 3, Llama 2, and a SmolLM2 stand-in: npm has no SmolLM2
 * vocabulary, so `smollm` is SmolLM2's layout and pre-tokenizer over Llama 3's first merges), and for the synthetic
 * vocabularies of both tokenizer kinds in several metadata variants. Prints how many texts matched per vocabulary.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeGGUF, type GGUFKV } from '../../../test/fixtures/gguf-writer.js';
import { tokenizerCorpus } from '../../../test/fixtures/tokenizer-corpus.js';
import { buildVocab, GPT2_BYTE_TO_CHAR, TOKEN_TYPE, type VocabKind } from '../../../test/fixtures/vocab.js';
import { parseGGUF } from '../gguf/index.js';
import { createTokenizer, type Tokenizer } from './index.js';

const NODE_LLAMA_CPP = new URL('../../../tools/peers/node_modules/node-llama-cpp/dist/index.js', import.meta.url).href;

interface Variant {
  name: string;
  kind: VocabKind;
  /** Token count of the fixture vocabulary (default: the fixture's). */
  size?: number;
  /** Changes to the fixture vocabulary's tokenizer metadata. */
  edit?: (kvs: GGUFKV[]) => GGUFKV[];
}

const without = (...names: string[]) => (kvs: GGUFKV[]) => kvs.filter((kv) => !names.some((name) => kv.key === `tokenizer.ggml.${name}`));
const setKV = (kv: GGUFKV) => (kvs: GGUFKV[]) => [...kvs.filter((other) => other.key !== kv.key), kv];
const bool = (key: string, value: boolean): GGUFKV => ({ key: `tokenizer.ggml.${key}`, type: 'bool', value });

/** Appends tokens of the given llama.cpp token types (scores 0 where the vocabulary has scores). */
const addTokens = (extra: [string, number][]) => (kvs: GGUFKV[]) =>
  kvs.map((kv) => {
    if (kv.key === 'tokenizer.ggml.tokens') return { ...kv, value: [...(kv.value as string[]), ...extra.map(([text]) => text)] };
    if (kv.key === 'tokenizer.ggml.token_type') return { ...kv, value: [...(kv.value as Int32Array), ...extra.map(([, type]) => type)] };
    if (kv.key === 'tokenizer.ggml.scores') return { ...kv, value: [...(kv.value as Float32Array), ...extra.map(() => 0)] };
    return kv;
  });

/** Rounds scores so that many pairs tie and llama.cpp's leftmost-first rule decides. */
const coarseScores = (kvs: GGUFKV[]) =>
  kvs.map((kv) => (kv.key === 'tokenizer.ggml.scores' ? { ...kv, value: Float32Array.from(kv.value as Float32Array, (s) => Math.round(s / 40)) } : kv));

/** Merges ranked first whose results are not tokens: llama.cpp then keeps only the ASCII bytes of such a piece. */
const strayMerges = (kvs: GGUFKV[]) =>
  kvs.map((kv) => {
    if (kv.key !== 'tokenizer.ggml.merges') return kv;
    const emojiLead = `${GPT2_BYTE_TO_CHAR[0xf0]} ${GPT2_BYTE_TO_CHAR[0x9f]}`;
    return { ...kv, value: ['z q', 'q z', emojiLead, ...(kv.value as string[])] };
  });

const chatTokens = addTokens([['<|user|>', TOKEN_TYPE.USER_DEFINED], ['<|im_end|>', TOKEN_TYPE.NORMAL], ['hello', TOKEN_TYPE.USER_DEFINED]]);
const compose = (...edits: ((kvs: GGUFKV[]) => GGUFKV[])[]) => (kvs: GGUFKV[]) => edits.reduce((acc, edit) => edit(acc), kvs);

const VARIANTS: Variant[] = [
  { name: 'Llama 3 (128k BPE, llama-bpe)', kind: 'llama3' },
  { name: 'Qwen3 (151k BPE, qwen2)', kind: 'qwen3' },
  { name: 'Gemma 3 (262k SentencePiece)', kind: 'gemma3' },
  { name: 'Llama 2 (32k SentencePiece)', kind: 'llama2' },
  { name: 'SmolLM2 stand-in (49k BPE, smollm)', kind: 'smollm' },
  { name: 'llama', kind: 'llama' },
  { name: 'llama, 2000 tokens', kind: 'llama', size: 2000 },
  { name: 'llama, tied scores', kind: 'llama', edit: coarseScores },
  { name: 'llama, no space prefix, adds EOS', kind: 'llama', edit: compose(setKV(bool('add_space_prefix', false)), setKV(bool('add_eos_token', true))) },
  { name: 'llama, chat tokens, no add_bos key', kind: 'llama', edit: compose(chatTokens, without('add_bos_token', 'bos_token_id')) },
  { name: 'llama, no token types or scores', kind: 'llama', edit: without('token_type', 'scores') },
  { name: 'gpt2 (pre gpt-2)', kind: 'gpt2' },
  { name: 'gpt2, no token types, space prefix on', kind: 'gpt2', edit: compose(without('token_type'), setKV(bool('add_space_prefix', true))) },
  { name: 'gpt2, 2000 tokens', kind: 'gpt2', size: 2000 },
  { name: 'gpt2, no pre (default)', kind: 'gpt2', edit: without('pre') },
  { name: 'gpt2, merges that make no token', kind: 'gpt2', edit: strayMerges },
  {
    name: 'gpt2, pre llama3, a token no merge reaches',
    kind: 'gpt2',
    edit: compose(setKV({ key: 'tokenizer.ggml.pre', type: 'string', value: 'llama3' }), without('add_bos_token'), addTokens([['Ġzzqx', TOKEN_TYPE.NORMAL]])),
  },
  { name: 'gpt2, chat tokens, default ids', kind: 'gpt2', edit: compose(chatTokens, without('add_bos_token', 'bos_token_id', 'eos_token_id')) },
  ...['qwen2', 'deepseek-r1-qwen', 'smollm'].map((pre): Variant => ({ name: `gpt2, pre ${pre}`, kind: 'gpt2', edit: setKV({ key: 'tokenizer.ggml.pre', type: 'string', value: pre }) })),
];

/** Just enough llama hyperparameters for llama.cpp to load the vocabulary. */
const HPARAMS: GGUFKV[] = [
  { key: 'general.architecture', type: 'string', value: 'llama' },
  ...['context_length', 'embedding_length', 'block_count', 'feed_forward_length', 'attention.head_count'].map(
    (key): GGUFKV => ({ key: `llama.${key}`, type: 'u32', value: key === 'block_count' ? 1 : 64 }),
  ),
  { key: 'llama.attention.layer_norm_rms_epsilon', type: 'f32', value: 1e-5 },
];

interface Oracle {
  tokenize(text: string, special: boolean): number[];
  detokenize(ids: number[], special: boolean): string;
  bos: number | undefined;
  eos: number | undefined;
  eot: number | undefined;
  addBos: boolean;
  isEog(id: number): boolean;
}

const dir = mkdtempSync(join(tmpdir(), 'rg-tokenizer-'));
/** The part of node-llama-cpp's LlamaModel these tests use. */
interface LlamaCppVocab {
  tokenize(text: string, special: boolean): readonly number[];
  detokenize(ids: readonly number[], special: boolean): string;
  tokens: { bos: number | null; eos: number | null; eot: number | null; shouldPrependBosToken: boolean };
  isEogToken(id: number): boolean;
}
let llama: { loadModel(options: { modelPath: string; vocabOnly: boolean }): Promise<LlamaCppVocab> };
/** Per vocabulary: what was compared and how much of it matched, printed at the end. */
const summary = new Map<string, Record<string, string>>();
const record = (variant: Variant, what: string, matched: number, total: number) =>
  summary.set(variant.name, { ...summary.get(variant.name), [what]: `${matched}/${total}` });

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  console.log(`Tokenizer parity with llama.cpp (texts or ids identical / compared):\n${[...summary].map(([name, row]) => `  ${name}: ${Object.entries(row).map(([what, n]) => `${what} ${n}`).join(', ')}`).join('\n')}`);
});
beforeAll(async () => {
  const { getLlama, LlamaLogLevel } = await import(NODE_LLAMA_CPP);
  // Silent: llama.cpp logs a "missing tensor" error for vocab-only files although loading them works; a real failure still throws.
  llama = await getLlama({ gpu: false, logLevel: LlamaLogLevel.disabled, build: 'never' });
});

async function load(variant: Variant): Promise<{ ours: Tokenizer; theirs: Oracle; corpus: string[] }> {
  const vocab = buildVocab(variant.kind, variant.size);
  const bytes = writeGGUF({ metadata: [...HPARAMS, ...(variant.edit ?? ((kvs) => kvs))(vocab.metadata)], tensors: [] });
  const path = join(dir, `${variant.name.replace(/\W+/g, '-')}.gguf`);
  writeFileSync(path, bytes);
  const model = await llama.loadModel({ modelPath: path, vocabOnly: true });
  const metadata = parseGGUF(bytes).metadata;
  const types = metadata['tokenizer.ggml.token_type'] as Int32Array | undefined;
  const specialTexts = (metadata['tokenizer.ggml.tokens'] as string[]).filter((_, id) => types && types[id] !== TOKEN_TYPE.NORMAL && types[id] !== TOKEN_TYPE.BYTE);
  return {
    ours: createTokenizer(metadata),
    theirs: {
      tokenize: (text, special) => Array.from(model.tokenize(text, special), Number),
      detokenize: (ids, special) => model.detokenize(ids, special),
      bos: model.tokens.bos ?? undefined,
      eos: model.tokens.eos ?? undefined,
      eot: model.tokens.eot ?? undefined,
      addBos: model.tokens.shouldPrependBosToken,
      isEog: (id) => model.isEogToken(id),
    },
    corpus: tokenizerCorpus(specialTexts),
  };
}

/** Runs `check` on every case; returns the cases where ours and theirs differ (at most 5) after recording the count. */
function compareAll<T>(variant: Variant, what: string, cases: readonly T[], check: (c: T) => { ours: unknown; theirs: unknown }) {
  const differing: { case: T; ours: unknown; theirs: unknown }[] = [];
  let matched = 0;
  for (const c of cases) {
    const { ours, theirs } = check(c);
    if (JSON.stringify(ours) === JSON.stringify(theirs)) matched++;
    else if (differing.length < 5) differing.push({ case: c, ours, theirs });
  }
  record(variant, what, matched, cases.length);
  return differing;
}

describe.each(VARIANTS)('$name', (variant) => {
  let ours: Tokenizer;
  let theirs: Oracle;
  let corpus: string[];
  beforeAll(async () => ({ ours, theirs, corpus } = await load(variant)));

  it('has llama.cpp special ids, BOS policy and end-of-generation tokens', () => {
    // node-llama-cpp hides BOS/EOS ids that are not control tokens (llama.cpp's defaults 1/2 or 11 can be plain ones).
    if (theirs.bos !== undefined) expect(ours.bos).toBe(theirs.bos);
    if (theirs.eos !== undefined) expect(ours.eos).toBe(theirs.eos);
    expect(ours.eot).toBe(theirs.eot);
    expect(ours.addBos && theirs.bos !== undefined).toBe(theirs.addBos); // theirs is false for a hidden BOS, as above
    const eog = (isEog: (id: number) => boolean) => Array.from({ length: ours.vocabSize }, (_, id) => id).filter(isEog);
    expect(eog((id) => ours.isEog(id))).toEqual(eog(theirs.isEog));
  });

  for (const parseSpecial of [false, true]) {
    it(`encodes the corpus as llama.cpp (parseSpecial ${parseSpecial})`, () => {
      expect(corpus.length).toBeGreaterThanOrEqual(300);
      const differing = compareAll(variant, `encode (special ${parseSpecial ? 'on' : 'off'})`, corpus, (text) => ({
        ours: ours.encode(text, { addSpecial: false, parseSpecial }),
        theirs: theirs.tokenize(text, parseSpecial),
      }));
      expect(differing).toEqual([]);
    });
  }

  it('encodes random mixtures of tricky characters as llama.cpp', () => {
    const pool = [
      ' ', '  ', '\t', '\n', '\r\n', '\u00a0', '\u3000', '\u0085', 'a', 'the', 'The', 'ing', 'é', 'e\u0301', '漢', 'ひ', 'م', '1', '23', '4567',
      '.', ',', '!', '?', "'", "'s", "'LL", '"', '(', '$', '+', '<', '>', '|', '~', '`', '_', '-', '🚀', '👨‍👩‍👧', '🇯🇵', '\u200d', '\ufeff',
      '<s>', '</s>', '<unk>', '<|endoftext|>', '<|user|>', '<|im_end|>', 'hello', '<0x41>', '▁', 'Ġ',
      '<|im_start|>', '<|eot_id|>', '<start_of_turn>', '<end_of_turn>', '<think>', '<bos>', '<eos>', '<pad>',
    ];
    let seed = 12345;
    const random = (n: number) => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
    const texts = Array.from({ length: 400 }, () => Array.from({ length: 1 + random(14) }, () => pool[random(pool.length)]).join(''));
    const differing = compareAll(variant, 'random mixtures', texts.flatMap((text) => [{ text, parseSpecial: false }, { text, parseSpecial: true }]), ({ text, parseSpecial }) => ({
      ours: ours.encode(text, { addSpecial: false, parseSpecial }),
      theirs: theirs.tokenize(text, parseSpecial),
    }));
    expect(differing).toEqual([]);
  });

  it('decodes as llama.cpp, with and without special text, whole and cut anywhere', () => {
    const slices = corpus.flatMap((text) => {
      const ids = ours.encode(text, { addSpecial: true, parseSpecial: true });
      // Every cut near the start, then about 32 more: long texts would otherwise take quadratic time.
      const cuts: number[][] = [];
      for (let end = ids.length; end >= 0; end -= end > 12 ? Math.max(7, ids.length >> 5) : 1) cuts.push(ids.slice(end > 3 ? 1 : 0, end));
      return cuts.flatMap((slice) => [{ slice, unparseSpecial: false }, { slice, unparseSpecial: true }]);
    });
    const differing = compareAll(variant, 'decode', slices, ({ slice, unparseSpecial }) => ({
      ours: ours.decode(slice, { unparseSpecial }),
      theirs: theirs.detokenize(slice, unparseSpecial),
    }));
    expect(differing).toEqual([]);
  });

  it('decodes every single token and random sequences as llama.cpp', () => {
    const ids = Array.from({ length: ours.vocabSize }, (_, id) => id);
    const single = compareAll(variant, 'tokens', ids, (id) => ({
      ours: [ours.decode([id]), ours.decode([id], { unparseSpecial: true })],
      theirs: [theirs.detokenize([id], false), theirs.detokenize([id], true)],
    }));
    expect(single).toEqual([]);
    let seed = 7;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % ours.vocabSize;
    const sequences = Array.from({ length: 200 }, (_, n) => Array.from({ length: 1 + (n % 9) }, random));
    expect(compareAll(variant, 'random id sequences', sequences, (seq) => ({ ours: ours.decode(seq), theirs: theirs.detokenize(seq, false) }))).toEqual([]);
  });
});
