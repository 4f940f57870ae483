import { describe, expect, it } from 'vitest';
import type { GGUFKV } from '../../../test/fixtures/gguf-writer.js';
import { buildVocab, type VocabKind } from '../../../test/fixtures/vocab.js';
import { GGUFError, InvalidArgumentError, UnsupportedError } from '../errors.js';
import type { GGUFMetadata } from '../gguf/types.js';
import { createTokenizer, StreamingDecoder } from './index.js';

/** The fixture vocabulary as the GGUF reader returns it, with some keys replaced or (undefined) removed. */
function metadata(kind: VocabKind, changes: Record<string, GGUFMetadata[string] | undefined> = {}): GGUFMetadata {
  const base: GGUFMetadata = Object.fromEntries(
    buildVocab(kind).metadata.map((kv: GGUFKV) => [kv.key, kv.type === 'array' && kv.itemType === 'string' ? [...(kv.value as string[])] : (kv.value as GGUFMetadata[string])]),
  );
  for (const [key, value] of Object.entries(changes)) {
    if (value === undefined) delete base[key];
    else base[key] = value;
  }
  return base;
}

const gpt2Tokens = metadata('gpt2')['tokenizer.ggml.tokens'] as string[];

describe('createTokenizer', () => {
  it('rejects unknown tokenizer models and pre-tokenizers by name', () => {
    expect(() => createTokenizer(metadata('llama', { 'tokenizer.ggml.model': 'bert' }))).toThrow(UnsupportedError);
    expect(() => createTokenizer(metadata('llama', { 'tokenizer.ggml.model': 'bert' }))).toThrow(/"bert"/);
    expect(() => createTokenizer(metadata('llama', { 'tokenizer.ggml.model': undefined }))).toThrow(/tokenizer\.ggml\.model null/);
    expect(() => createTokenizer(metadata('gpt2', { 'tokenizer.ggml.pre': 'tekken' }))).toThrow(UnsupportedError);
    expect(() => createTokenizer(metadata('gpt2', { 'tokenizer.ggml.pre': 'tekken' }))).toThrow(/"tekken" is not supported \(supported: .*qwen2.*smollm/);
  });

  it('rejects vocabularies llama.cpp could not load either', () => {
    expect(() => createTokenizer(metadata('llama', { 'tokenizer.ggml.tokens': undefined }))).toThrow(GGUFError);
    expect(() => createTokenizer(metadata('gpt2', { 'tokenizer.ggml.merges': undefined }))).toThrow(/merges/);
    expect(() => createTokenizer(metadata('llama', { 'tokenizer.ggml.scores': new Float32Array(3) }))).toThrow(/3 entries/);
    const tokens = metadata('llama')['tokenizer.ggml.tokens'] as string[];
    expect(() => createTokenizer(metadata('llama', { 'tokenizer.ggml.tokens': [...tokens.slice(0, -1), tokens[300]!] }))).toThrow(/twice/);
  });

  it("picks llama.cpp's end-of-turn token by text: the first of its candidates, not the lowest id", () => {
    const tok = createTokenizer(metadata('gpt2', { 'tokenizer.ggml.tokens': [...gpt2Tokens.slice(0, -2), '<|endoftext|>', '<|im_end|>'] }));
    expect(tok.eot).toBe(639); // <|im_end|> comes before <|endoftext|> in llama.cpp's list (as for Qwen: 151645, not 151643)
    expect([tok.isEog(638), tok.isEog(639)]).toEqual([true, true]);
    const named = createTokenizer(metadata('gpt2', { 'tokenizer.ggml.eot_token_id': 5 }));
    expect(named.eot).toBe(5); // the GGUF key wins over detection
  });

  it('reports kind, size and special ids', () => {
    const llama = createTokenizer(metadata('llama'));
    expect([llama.kind, llama.vocabSize, llama.bos, llama.eos, llama.addBos, llama.addEos]).toEqual(['llama', 640, 1, 2, true, false]);
    const gpt2 = createTokenizer(metadata('gpt2'));
    expect([gpt2.kind, gpt2.vocabSize, gpt2.bos, gpt2.eos, gpt2.eot, gpt2.addBos]).toEqual(['gpt2', 640, 639, 639, 639, false]);
    expect(gpt2.tokenText(639)).toBe('<|endoftext|>');
    expect(gpt2.isEog(639)).toBe(true);
    expect(gpt2.isEog(0)).toBe(false);
  });
});

describe('encode', () => {
  it('adds BOS/EOS as the metadata says, only when addSpecial', () => {
    const tok = createTokenizer(metadata('llama', { 'tokenizer.ggml.add_eos_token': true }));
    const plain = tok.encode('Hello world', { addSpecial: false });
    expect(tok.encode('Hello world')).toEqual([1, ...plain, 2]);
    expect(tok.encode('')).toEqual([1, 2]);
    expect(tok.encode('', { addSpecial: false })).toEqual([]);
  });

  it('uses llama.cpp defaults when keys are absent (llama: BOS on; gpt2: off, but on for llama3 pre-tokenization)', () => {
    expect(createTokenizer(metadata('llama', { 'tokenizer.ggml.add_bos_token': undefined })).addBos).toBe(true);
    expect(createTokenizer(metadata('gpt2', { 'tokenizer.ggml.add_bos_token': undefined })).addBos).toBe(false);
    const llama3 = createTokenizer(metadata('gpt2', { 'tokenizer.ggml.add_bos_token': undefined, 'tokenizer.ggml.pre': 'llama3' }));
    expect(llama3.encode('hi')[0]).toBe(llama3.bos);
  });

  it('treats special-token text as plain text unless parseSpecial', () => {
    const tok = createTokenizer(metadata('llama'));
    expect(tok.encode('<s>', { addSpecial: false, parseSpecial: true })).toEqual([1]);
    expect(tok.encode('<s>', { addSpecial: false })).not.toContain(1);
    expect(tok.decode(tok.encode('<s>', { addSpecial: false }))).toBe('<s>');
  });

  it('falls back to <unk> for a character with no token and no byte token (where llama.cpp would throw)', () => {
    const tiny: GGUFMetadata = {
      'tokenizer.ggml.model': 'llama',
      'tokenizer.ggml.tokens': ['<unk>', '<s>', '</s>', '▁', 'a'],
      'tokenizer.ggml.token_type': Int32Array.of(2, 3, 3, 1, 1),
    };
    expect(createTokenizer(tiny).encode('a€', { addSpecial: false })).toEqual([3, 4, 0, 0, 0]);
    const empty = createTokenizer({ 'tokenizer.ggml.model': 'llama', 'tokenizer.ggml.tokens': [] });
    expect(() => empty.encode('a')).toThrow(UnsupportedError);
  });

  it('rejects a non-string', () => {
    expect(() => createTokenizer(metadata('gpt2')).encode(42 as unknown as string)).toThrow(InvalidArgumentError);
  });

  it('handles long prompts and long unbroken words, and round-trips them', () => {
    for (const kind of ['llama', 'gpt2'] as const) {
      const tok = createTokenizer(metadata(kind));
      const prose = 'The lighthouse keeper counted the ships, 1234 of them, and wrote their names — 灯台 🚢.\n'.repeat(400);
      const ids = tok.encode(prose, { addSpecial: false });
      expect(ids.length).toBeGreaterThan(1000);
      expect(tok.decode(ids)).toBe(prose);
      const word = 'ab'.repeat(25_000);
      expect(tok.decode(tok.encode(word, { addSpecial: false }))).toBe(word);
    }
  });
});

describe('decode and tokenToBytes', () => {
  it('hides control tokens unless unparseSpecial, and drops BOS/EOS with removeSpecial as llama.cpp', () => {
    const tok = createTokenizer(metadata('llama', { 'tokenizer.ggml.add_eos_token': true }));
    const ids = tok.encode('Hello');
    expect(tok.decode(ids)).toBe(' Hello'); // the first piece is BOS, so llama.cpp strips no space
    expect(tok.decode(ids, { unparseSpecial: true })).toBe('<s> Hello</s>');
    expect(tok.decode(ids, { removeSpecial: true, unparseSpecial: true })).toBe(' Hello');
    expect(tok.decode(ids.slice(1, -1))).toBe('Hello');
    expect(tok.tokenToBytes(1)).toEqual(new Uint8Array(0));
    expect(new TextDecoder().decode(tok.tokenToBytes(1, { unparseSpecial: true }))).toBe('<s>');
  });

  it("tidies spaces before punctuation and contractions only where llama.cpp's clean_spaces is on for the pre-tokenizer", () => {
    const text = "Hello , world . they 're here";
    for (const [pre, decoded] of [
      ['gpt-2', "Hello, world. they're here"],
      ['llama-bpe', "Hello, world. they're here"],
      ['qwen2', text],
      ['smollm', text],
    ]) {
      const tok = createTokenizer(metadata('gpt2', { 'tokenizer.ggml.pre': pre }));
      expect(tok.decode(tok.encode(text, { addSpecial: false }))).toBe(decoded);
    }
  });

  it('gives raw bytes for byte tokens and rejects ids outside the vocabulary', () => {
    const tok = createTokenizer(metadata('llama'));
    expect(tok.tokenToBytes(3 + 0xf0)).toEqual(Uint8Array.of(0xf0));
    expect(tok.tokenText(3 + 0x0a)).toBe('<0x0A>');
    for (const bad of [-1, 640, 1.5, NaN]) {
      expect(() => tok.decode([bad])).toThrow(InvalidArgumentError);
      expect(() => tok.tokenToBytes(bad)).toThrow(InvalidArgumentError);
      expect(() => tok.tokenText(bad)).toThrow(InvalidArgumentError);
    }
  });
});

describe('StreamingDecoder', () => {
  it('returns only whole characters, holding back a character split over byte tokens', () => {
    const tok = createTokenizer(metadata('llama'));
    const ids = tok.encode('go 🚀 now', { addSpecial: false });
    const stream = new StreamingDecoder(tok);
    const parts = ids.map((id) => stream.push(id));
    expect(parts.join('') + stream.flush()).toBe(' go 🚀 now');
    const rocket = parts.findIndex((part) => part.includes('🚀'));
    expect(parts.slice(rocket - 3, rocket)).toEqual(['', '', '']); // F0 9F 9A come before 80 completes the rocket
  });

  it('flushes an unfinished character as U+FFFD and keeps a generated byte-order mark', () => {
    const tok = createTokenizer(metadata('gpt2')); // ids 0..255 are the byte tokens, in byte order
    const stream = new StreamingDecoder(tok);
    expect([0xef, 0xbb, 0xbf].map((byte) => stream.push(byte))).toEqual(['', '', '\ufeff']);
    expect(stream.push(0xe6)).toBe('');
    expect(stream.flush()).toBe('\ufffd');
    expect(stream.push(0x41)).toBe('A');
  });

  it('renders control tokens only when asked', () => {
    const tok = createTokenizer(metadata('gpt2'));
    expect(new StreamingDecoder(tok).push(639)).toBe('');
    expect(new StreamingDecoder(tok, { unparseSpecial: true }).push(639)).toBe('<|endoftext|>');
  });
});
