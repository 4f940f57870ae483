import { describe, expect, it } from 'vitest';
import { RecycleGPTError, UnsupportedError } from '../errors.js';
import { preTokenizer } from './pretokenizer.js';

const split = (pre: string, text: string) => preTokenizer(pre).split(text);

describe('preTokenizer contractions', () => {
  it("gpt-2 and smollm split off GPT-2's seven lower-case contractions only", () => {
    for (const pre of ['gpt-2', 'smollm']) {
      expect(split(pre, "it's isn't they're we've I'm you'll he'd")).toEqual(
        ['it', "'s", ' isn', "'t", ' they', "'re", ' we', "'ve", ' I', "'m", ' you', "'ll", ' he', "'d"],
      );
      // Upper case is no contraction here: the apostrophe goes alone and the letters join the next word.
      expect(split(pre, "IT'S WE'LL")).toEqual(['IT', "'", 'S', ' WE', "'", 'LL']);
      // Matched anywhere, not only at a word's end, and only those seven.
      expect(split(pre, "'sup 'em o'clock")).toEqual(["'s", 'up', " '", 'em', ' o', "'", 'clock']);
    }
  });

  it('llama3 and qwen2 split off the same contractions in any case', () => {
    for (const pre of ['llama-bpe', 'qwen2']) {
      expect(split(pre, "it's isn't they're we've I'm you'll he'd")).toEqual(
        ['it', "'s", ' isn', "'t", ' they', "'re", ' we', "'ve", ' I', "'m", ' you', "'ll", ' he', "'d"],
      );
      expect(split(pre, "IT'S WE'LL They'Re i'M you'Ll")).toEqual(['IT', "'S", ' WE', "'LL", ' They', "'Re", ' i', "'M", ' you', "'Ll"]);
      // A contraction is cut off even when letters follow; otherwise the apostrophe leads the letters after it.
      expect(split(pre, "'Sup we'llx WE'LLX")).toEqual(["'S", 'up', ' we', "'ll", 'x', ' WE', "'LL", 'X']);
      expect(split(pre, "o'clock 'em")).toEqual(['o', "'clock", " '", 'em']);
    }
  });
});

describe('preTokenizer digits and spaces', () => {
  it('groups digits by three for llama3, one by one for qwen2 and smollm, whole runs for gpt-2', () => {
    expect(split('llama-bpe', 'x 1234567')).toEqual(['x', ' ', '123', '456', '7']);
    expect(split('qwen2', 'x 1234567')).toEqual(['x', ' ', '1', '2', '3', '4', '5', '6', '7']);
    expect(split('smollm', 'x 1234567')).toEqual(['x', ' ', '1', '2', '3', '4', '5', '6', '7']);
    expect(split('gpt-2', 'x 1234567')).toEqual(['x', ' 1234567']);
  });

  it('keeps newlines with the punctuation before them (llama3, qwen2) and leaves the last space to the next word', () => {
    for (const pre of ['llama-bpe', 'qwen2']) expect(split(pre, 'a.\n\n  b')).toEqual(['a', '.\n\n', ' ', ' b']);
    expect(split('gpt-2', 'a.\n\n  b')).toEqual(['a', '.', '\n\n ', ' b']);
  });

  it('says which pre-tokenizers exist when given another, as a typed GGUF_UNSUPPORTED error', () => {
    let error: unknown;
    try {
      preTokenizer('tekken');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(UnsupportedError);
    expect((error as RecycleGPTError).code).toBe('GGUF_UNSUPPORTED');
    expect((error as Error).message).toMatch(/"tekken" is not supported \(supported: default, gpt-2, .*llama-bpe.*qwen2, deepseek-r1-qwen, smollm\)/);
  });
});
