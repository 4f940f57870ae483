/**
 * The merge order both tokenizers share (merge.ts): best pair first, ties to the leftmost pair. Tiny vocabularies
 * where a different order gives different tokens.
 */
import { describe, expect, it } from 'vitest';
import { createTokenizer } from './index.js';

const ids = (tokens: string[], texts: string[]) => texts.map((text) => tokens.indexOf(text));

describe('BPE merges', () => {
  const bpe = (tokens: string[], merges: string[]) =>
    createTokenizer({ 'tokenizer.ggml.model': 'gpt2', 'tokenizer.ggml.pre': 'gpt-2', 'tokenizer.ggml.tokens': tokens, 'tokenizer.ggml.merges': merges });
  const encode = (tokens: string[], merges: string[], text: string) => bpe(tokens, merges).encode(text, { addSpecial: false });
  const tokens = ['a', 'b', 'c', 'ab', 'bc', 'aa', 'aaaa'];

  it('applies the merge listed first (lowest rank) first, wherever it is in the word', () => {
    expect(encode(tokens, ['b c', 'a b'], 'abc')).toEqual(ids(tokens, ['a', 'bc']));
    expect(encode(tokens, ['a b', 'b c'], 'abc')).toEqual(ids(tokens, ['ab', 'c']));
    // A merge listed twice keeps its first rank (llama.cpp's bpe_ranks.emplace).
    expect(encode(tokens, ['a b', 'b c', 'a b'], 'abc')).toEqual(ids(tokens, ['ab', 'c']));
  });

  it('merges the leftmost of equally ranked pairs first, then continues from the new symbols', () => {
    expect(encode(tokens, ['a a'], 'aaa')).toEqual(ids(tokens, ['aa', 'a']));
    expect(encode(tokens, ['a a'], 'aaaaa')).toEqual(ids(tokens, ['aa', 'aa', 'a']));
    expect(encode(tokens, ['a a', 'aa aa'], 'aaaaa')).toEqual(ids(tokens, ['aaaa', 'a']));
    // "a a" ranks before "aa aa", so both halves merge before they join.
    expect(encode(tokens, ['aa aa', 'a a'], 'aaaa')).toEqual(ids(tokens, ['aaaa']));
  });
});

describe('SentencePiece merges', () => {
  const spm = (scores: Record<string, number>) => {
    const tokens = ['<unk>', '<s>', '</s>', 'a', 'b', 'c', ...Object.keys(scores)];
    return {
      tokens,
      tok: createTokenizer({
        'tokenizer.ggml.model': 'llama',
        'tokenizer.ggml.add_space_prefix': false,
        'tokenizer.ggml.tokens': tokens,
        'tokenizer.ggml.scores': Float32Array.from(tokens, (t) => scores[t] ?? 0),
        'tokenizer.ggml.token_type': Int32Array.from(tokens, (_, id) => (id === 0 ? 2 : id < 3 ? 3 : 1)),
      }),
    };
  };
  const encode = (scores: Record<string, number>, text: string) => {
    const { tokens, tok } = spm(scores);
    return tok.encode(text, { addSpecial: false }).map((id) => tokens[id]);
  };

  it('merges the pair whose result scores highest first', () => {
    expect(encode({ ab: -2, bc: -1 }, 'abc')).toEqual(['a', 'bc']);
    expect(encode({ ab: -1, bc: -2 }, 'abc')).toEqual(['ab', 'c']);
  });

  it('merges the leftmost of equally scored pairs first', () => {
    expect(encode({ ab: -1, bc: -1 }, 'abc')).toEqual(['ab', 'c']);
    expect(encode({ aa: -1 }, 'aaa')).toEqual(['aa', 'a']);
    expect(encode({ aa: -1, aaaa: -2 }, 'aaaaa')).toEqual(['aaaa', 'a']);
  });
});
