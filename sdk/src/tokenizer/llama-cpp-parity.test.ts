/**
 * Token ids and detokenized text must equal llama.cpp's (node-llama-cpp 3.22.1) for the same GGUF vocabulary,
 * over a varied text set, for both tokenizer kinds and several metadata variants.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeGGUF, type GGUFKV } from '../../../test/fixtures/gguf-writer.js';
import { VOCAB_SAMPLE_TEXT } from '../../../test/fixtures/vocab-sample.js';
import { buildVocab, GPT2_BYTE_TO_CHAR, TOKEN_TYPE, type VocabKind } from '../../../test/fixtures/vocab.js';
import { parseGGUF } from '../gguf/index.js';
import { createTokenizer, type Tokenizer } from './index.js';

const NODE_LLAMA_CPP = new URL('../../../tools/peers/node_modules/node-llama-cpp/dist/index.js', import.meta.url).href;

const TEXTS = [
  '', ' ', '  ', '\t', '\n', '\n\n\n', ' \n \n', 'end\n', '  \n  indented\n    more', ' \t \n\t x',
  'Hello world', ' Hello world', 'Hello world ', '   leading and trailing   ', 'multiple    spaces   between',
  'tabs\tand\t\tmore\ttabs', 'lines\nand\r\nwindows\rnewlines', 'The quick brown fox jumps over the lazy dog.',
  'Café crème brûlée, naïve résumé', 'e\u0301 a\u0300 n\u0303 combining', '漢字とひらがな、カタカナ。中文测试', '한국어 텍스트',
  'مرحبا بالعالم', 'abc שלום 123', 'Ελληνικά Русский हिन्दी ไทย', '∑ x² ≤ ∞ ∀ε>0 ∃δ',
  '🚀🔥 rockets and fire 🎉', '👨‍👩‍👧‍👦 family', '🇫🇷🇯🇵🇺🇸', '👍🏽 ok',
  '1234567890', '3.14159265358979323846264338327950288419716939937510', '1,000,000 and 12.5% of $3,000', 'year 2024, 7 days, 42nd',
  'function add(a, b) {\n  return a + b;\n}', 'def f(x):\n    return x ** 2  # square\n',
  '{"key": [1, 2.5, null, true], "nested": {"a": "b"}}', 'https://example.com/path?query=1&b=2#frag',
  'Wait... what?! No way!!! (really?) [yes] {no} <maybe>', "I'm sure you're right, we'll see, it's theirs; don't. I'D SAY THEY'VE",
  "rock ' n ' roll ' s", 'say zzqx zzqxzzqx', 'zqz qzq', "x ' ' ' y '", "they 're here , we 've seen , I 'm ok , it 's , you 'll , don 't , he 'd , 'em", 'Hello , world . Is it ? Yes ! ok', 'a\u00a0b\u2003c\u3000d', '\u0085 next line \ufeff bom',
  'zero\u200bwidth\u200cnon\u200djoiner', '\u0000\u0001\u001f\u007f controls', 'lone \ud800 surrogate',
  '<s>Hello</s>', '<unk> token <s> in </s> middle', ' <s> spaced </s> ', '<|endoftext|>Text<|endoftext|>',
  '<|user|>hi<|im_end|>\n<|user|> there <|im_end|>', 'a'.repeat(300), 'ab'.repeat(100) + ' ' + 'the '.repeat(50),
  'Once upon a time there was a lighthouse keeper who counted the ships that passed. In the morning she wrote\n' +
    'their names in a blue notebook; in the evening she read them aloud to the sea. "Where are they going?" asked',
  VOCAB_SAMPLE_TEXT,
  // A long prompt mixing everything above.
  Array.from({ length: 12 }, (_, i) => `${i} ${VOCAB_SAMPLE_TEXT.slice(i * 97, i * 97 + 400)} 🚀 漢字 <s> </s> \t\n`).join('  ').repeat(4),
];

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
  addBos: boolean;
  isEog(id: number): boolean;
}

const dir = mkdtempSync(join(tmpdir(), 'rg-tokenizer-'));
/** The part of node-llama-cpp's LlamaModel these tests use. */
interface LlamaCppVocab {
  tokenize(text: string, special: boolean): readonly number[];
  detokenize(ids: readonly number[], special: boolean): string;
  tokens: { bos: number | null; eos: number | null; shouldPrependBosToken: boolean };
  isEogToken(id: number): boolean;
}
let llama: { loadModel(options: { modelPath: string; vocabOnly: boolean }): Promise<LlamaCppVocab> };
afterAll(() => rmSync(dir, { recursive: true, force: true }));
beforeAll(async () => {
  const { getLlama, LlamaLogLevel } = await import(NODE_LLAMA_CPP);
  // Silent: llama.cpp logs a "missing tensor" error for vocab-only files although loading them works; a real failure still throws.
  llama = await getLlama({ gpu: false, logLevel: LlamaLogLevel.disabled, build: 'never' });
});

async function load(variant: Variant): Promise<{ ours: Tokenizer; theirs: Oracle }> {
  const vocab = buildVocab(variant.kind, variant.size);
  const bytes = writeGGUF({ metadata: [...HPARAMS, ...(variant.edit ?? ((kvs) => kvs))(vocab.metadata)], tensors: [] });
  const path = join(dir, `${variant.name.replace(/\W+/g, '-')}.gguf`);
  writeFileSync(path, bytes);
  const model = await llama.loadModel({ modelPath: path, vocabOnly: true });
  return {
    ours: createTokenizer(parseGGUF(bytes).metadata),
    theirs: {
      tokenize: (text, special) => Array.from(model.tokenize(text, special), Number),
      detokenize: (ids, special) => model.detokenize(ids, special),
      bos: model.tokens.bos ?? undefined,
      eos: model.tokens.eos ?? undefined,
      addBos: model.tokens.shouldPrependBosToken,
      isEog: (id) => model.isEogToken(id),
    },
  };
}

describe.each(VARIANTS)('$name', (variant) => {
  let ours: Tokenizer;
  let theirs: Oracle;
  beforeAll(async () => ({ ours, theirs } = await load(variant)));

  it('has llama.cpp special ids, BOS policy and end-of-generation tokens', () => {
    // node-llama-cpp hides BOS/EOS ids that are not control tokens (llama.cpp's defaults 1/2 or 11 can be plain ones).
    if (theirs.bos !== undefined) expect(ours.bos).toBe(theirs.bos);
    if (theirs.eos !== undefined) expect(ours.eos).toBe(theirs.eos);
    expect(ours.addBos && theirs.bos !== undefined).toBe(theirs.addBos); // theirs is false for a hidden BOS, as above
    const eog = (isEog: (id: number) => boolean) => Array.from({ length: ours.vocabSize }, (_, id) => id).filter(isEog);
    expect(eog((id) => ours.isEog(id))).toEqual(eog(theirs.isEog));
  });

  for (const parseSpecial of [false, true]) {
    it(`encodes every text as llama.cpp (parseSpecial ${parseSpecial})`, () => {
      for (const text of TEXTS) {
        expect({ text, ids: ours.encode(text, { addSpecial: false, parseSpecial }) }).toEqual({ text, ids: theirs.tokenize(text, parseSpecial) });
      }
    });
  }

  it('encodes random mixtures of tricky characters as llama.cpp', () => {
    const pool = [
      ' ', '  ', '\t', '\n', '\r\n', '\u00a0', '\u3000', '\u0085', 'a', 'the', 'The', 'ing', 'é', 'e\u0301', '漢', 'ひ', 'م', '1', '23', '4567',
      '.', ',', '!', '?', "'", "'s", "'LL", '"', '(', '$', '+', '<', '>', '|', '~', '`', '_', '-', '🚀', '👨‍👩‍👧', '🇯🇵', '\u200d', '\ufeff',
      '<s>', '</s>', '<unk>', '<|endoftext|>', '<|user|>', '<|im_end|>', 'hello', '<0x41>', '▁', 'Ġ',
    ];
    let seed = 12345;
    const random = (n: number) => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
    for (let n = 0; n < 400; n++) {
      const text = Array.from({ length: 1 + random(14) }, () => pool[random(pool.length)]).join('');
      for (const parseSpecial of [false, true]) {
        expect({ text, ids: ours.encode(text, { addSpecial: false, parseSpecial }) }).toEqual({ text, ids: theirs.tokenize(text, parseSpecial) });
      }
    }
  });

  it('decodes as llama.cpp, with and without special text, whole and cut anywhere', () => {
    for (const text of TEXTS) {
      const ids = ours.encode(text, { addSpecial: true, parseSpecial: true });
      for (const unparseSpecial of [false, true]) {
        // Every cut near the start, then about 32 more: long texts would otherwise take quadratic time.
        for (let end = ids.length; end >= 0; end -= end > 12 ? Math.max(7, ids.length >> 5) : 1) {
          const slice = ids.slice(end > 3 ? 1 : 0, end);
          expect({ slice, text: ours.decode(slice, { unparseSpecial }) }).toEqual({ slice, text: theirs.detokenize(slice, unparseSpecial) });
        }
      }
    }
  });

  it('decodes every single token and random sequences as llama.cpp', () => {
    for (let id = 0; id < ours.vocabSize; id++) {
      for (const special of [false, true]) expect({ id, text: ours.decode([id], { unparseSpecial: special }) }).toEqual({ id, text: theirs.detokenize([id], special) });
    }
    let seed = 7;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % ours.vocabSize;
    for (let n = 0; n < 200; n++) {
      const ids = Array.from({ length: 1 + (n % 9) }, random);
      expect({ ids, text: ours.decode(ids) }).toEqual({ ids, text: theirs.detokenize(ids, false) });
    }
  });
});
