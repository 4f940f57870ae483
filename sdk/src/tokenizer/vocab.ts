/**
 * The vocabulary as llama.cpp's llama_vocab::load builds it from GGUF metadata: token texts, scores,
 * attributes, special ids (with llama.cpp's defaults and its detection of end-of-turn tokens by text)
 * and the flags that steer encoding and decoding.
 */
import { GGUFError } from '../errors.js';
import type { GGUFMetadata, GGUFValue } from '../gguf/types.js';

/** llama.cpp's token attributes (bit flags). */
export const Attr = { UNKNOWN: 1, UNUSED: 2, NORMAL: 4, CONTROL: 8, USER_DEFINED: 16, BYTE: 32 } as const;

/** GGUF `tokenizer.ggml.token_type` value → attribute (0 undefined, 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte). */
const TOKEN_TYPE_ATTR = [0, Attr.NORMAL, Attr.UNKNOWN, Attr.CONTROL, Attr.USER_DEFINED, Attr.UNUSED, Attr.BYTE];

/** What differs between tokenizer models before the GGUF keys override it. */
export interface VocabDefaults {
  bos?: number;
  eos?: number;
  unk?: number;
  addBos: boolean;
  addEos: boolean;
  addSpacePrefix: boolean;
  /** llama.cpp's clean_spaces: tidy " ," " 's" and the like when detokenizing. */
  cleanSpaces: boolean;
}

export interface Vocab {
  readonly texts: string[];
  readonly scores: Float32Array;
  readonly attrs: Uint8Array;
  readonly ids: Map<string, number>;
  /** Longest token text in UTF-16 units: no longer string can be a token. */
  readonly maxTextLength: number;
  readonly bos?: number;
  readonly eos?: number;
  readonly eot?: number;
  readonly unk?: number;
  readonly eog: ReadonlySet<number>;
  readonly addBos: boolean;
  readonly addEos: boolean;
  readonly addSpacePrefix: boolean;
  readonly cleanSpaces: boolean;
  /** Control, user-defined and unknown tokens, longest text first: the order special text is cut out of a prompt. */
  readonly specialOrder: number[];
}

/**
 * Tokens llama.cpp recognises by their text when the GGUF does not name them (llama_vocab::load).
 * A match is also promoted to a control token. `eog` ones end a generation.
 */
const DETECTED_ROLES = [
  { role: 'eot', eog: true, texts: ['<|eot_id|>', '<|im_end|>', '<|end|>', '<end_of_turn>', '<|endoftext|>', '<|end_of_text|>', '<EOT>', '_<EOT>', '[EOT]', '<｜end▁of▁sentence｜>', '<end_of_utterance>'] },
  { role: 'eom', eog: true, texts: ['<|eom_id|>'] },
  { role: 'fim_pre', eog: false, texts: ['<|fim_prefix|>', '<fim-prefix>', '<fim_prefix>', '<｜fim▁begin｜>', '<PRE>', '▁<PRE>', '<|code_prefix|>', '<|prefix|>'] },
  { role: 'fim_suf', eog: false, texts: ['<|fim_suffix|>', '<fim-suffix>', '<fim_suffix>', '<｜fim▁hole｜>', '<SUF>', '▁<SUF>', '<|code_suffix|>', '<|suffix|>'] },
  { role: 'fim_mid', eog: false, texts: ['<|fim_middle|>', '<fim-middle>', '<fim_middle>', '<｜fim▁end｜>', '<MID>', '▁<MID>', '<|code_middle|>', '<|middle|>'] },
  { role: 'fim_pad', eog: true, texts: ['<|fim_pad|>', '<fim-pad>', '<fim_pad>', '<PAD>', '[PAD]'] },
  { role: 'fim_rep', eog: true, texts: ['<|fim_repo|>', '<|repo_name|>', '<fim-repo>', '<REPO>', '<reponame>'] },
  { role: 'fim_sep', eog: true, texts: ['<|file_sep|>'] },
] as const;

/** Texts llama.cpp treats as end of generation wherever they sit in the vocabulary. */
const EOG_TEXTS = new Set([
  '<|eot_id|>', '<|im_end|>', '<|end|>', '<|return|>', '<|call|>', '<|flush|>', '<|calls|>', '<end_of_turn>', '<|endoftext|>',
  '</s>', '<|eom_id|>', '<EOT>', '_<EOT>', '[EOT]', '[EOS]', '<|end_of_text|>', '<end_of_utterance>', '<eos>', '<turn|>',
  '<|tool_response>', '<｜end▁of▁sentence｜>', '[e~[',
]);

const utf8 = new TextEncoder();

export function readVocab(metadata: GGUFMetadata, defaults: VocabDefaults): Vocab {
  const texts = readTexts(metadata);
  const n = texts.length;
  const scores = readNumbers(metadata, 'tokenizer.ggml.scores', n) ?? new Float32Array(n);
  const types = readNumbers(metadata, 'tokenizer.ggml.token_type', n);

  const ids = new Map<string, number>();
  const attrs = new Uint8Array(n).fill(Attr.NORMAL);
  let maxTextLength = 0;
  texts.forEach((text, id) => {
    const earlier = ids.get(text);
    if (earlier !== undefined) {
      throw new GGUFError(`tokenizer.ggml.tokens lists "${text}" twice (ids ${earlier} and ${id}); llama.cpp rejects such a vocabulary too. Re-export the model with unique tokens.`);
    }
    ids.set(text, id);
    maxTextLength = Math.max(maxTextLength, text.length);
    if (types) attrs[id] = TOKEN_TYPE_ATTR[types[id]!] ?? 0; // without types llama.cpp deems every token normal
  });

  const inRange = (id: number | undefined) => (id !== undefined && id >= 0 && id < n ? id : undefined);
  const specialId = (key: string, fallback: number | undefined) => inRange(readInt(metadata, `tokenizer.ggml.${key}`)) ?? inRange(fallback);
  const bos = specialId('bos_token_id', defaults.bos);
  const eos = specialId('eos_token_id', defaults.eos);
  const unk = specialId('unknown_token_id', defaults.unk);

  let eot: number | undefined;
  const eog = new Set<number>([...EOG_TEXTS].flatMap((text) => ids.get(text) ?? []));
  for (const id of eog) attrs[id]! |= Attr.CONTROL;
  for (const { role, eog: endsGeneration, texts: candidates } of DETECTED_ROLES) {
    let id = specialId(`${role}_token_id`, undefined);
    if (id === undefined) {
      // llama.cpp takes the first candidate its std::unordered_map walk meets, so its pick depends on the C++ library
      // it was built with. We take the first text in its list: on the real vocabularies that is what it picks
      // (Llama 3: <|eot_id|> over <|end_of_text|>; Qwen, SmolLM2: <|im_end|> over <|endoftext|>). Every end-of-turn
      // candidate ends generation anyway, so there the pick only changes `eot`; two candidates for one FIM role (no
      // supported family has them) could also differ in which one is control or ends generation.
      id = candidates.map((text) => ids.get(text)).find((found) => found !== undefined);
      if (id !== undefined) attrs[id]! |= Attr.CONTROL;
    }
    if (role === 'eot') eot = id;
    if (id !== undefined && endsGeneration) eog.add(id);
  }
  if (eos !== undefined) eog.add(eos);

  const addBos = readBool(metadata, 'tokenizer.ggml.add_bos_token') ?? defaults.addBos;
  const addEos = readBool(metadata, 'tokenizer.ggml.add_eos_token') ?? defaults.addEos;

  return {
    texts,
    scores,
    attrs,
    ids,
    maxTextLength,
    bos,
    eos,
    eot,
    unk,
    eog,
    // llama.cpp asserts when asked to add a token the vocabulary lacks; we just do not add it.
    addBos: addBos && bos !== undefined,
    addEos: addEos && eos !== undefined,
    addSpacePrefix: readBool(metadata, 'tokenizer.ggml.add_space_prefix') ?? defaults.addSpacePrefix,
    cleanSpaces: defaults.cleanSpaces,
    specialOrder: specialOrder(texts, attrs),
  };
}

function readTexts(metadata: GGUFMetadata): string[] {
  const tokens = metadata['tokenizer.ggml.tokens'];
  if (!Array.isArray(tokens) || tokens.some((t) => typeof t !== 'string')) {
    throw new GGUFError('tokenizer.ggml.tokens is missing or not an array of strings; the GGUF has no usable vocabulary.');
  }
  // As llama.cpp: an empty token would collide with nothing and match everywhere, so it gets a placeholder text.
  return (tokens as string[]).map((t, id) => (t === '' ? `[EMPTY_${id}]` : t));
}

function readNumbers(metadata: GGUFMetadata, key: string, n: number): Float32Array | undefined {
  const value = metadata[key];
  if (value === undefined) return undefined;
  if (!ArrayBuffer.isView(value) || value instanceof BigInt64Array || value instanceof BigUint64Array || value instanceof DataView) {
    throw new GGUFError(`${key} must be a numeric array.`);
  }
  if (value.length < n) throw new GGUFError(`${key} has ${value.length} entries for ${n} tokens; the GGUF is inconsistent.`);
  return Float32Array.from(value as ArrayLike<number>);
}

function readInt(metadata: GGUFMetadata, key: string): number | undefined {
  const value: GGUFValue | undefined = metadata[key];
  if (typeof value === 'number' && Number.isInteger(value)) return value;
  return undefined;
}

function readBool(metadata: GGUFMetadata, key: string): boolean | undefined {
  const value = metadata[key];
  return typeof value === 'boolean' ? value : undefined;
}

function specialOrder(texts: string[], attrs: Uint8Array): number[] {
  const special: { id: number; bytes: number }[] = [];
  attrs.forEach((attr, id) => {
    if (attr & (Attr.CONTROL | Attr.USER_DEFINED | Attr.UNKNOWN)) special.push({ id, bytes: utf8.encode(texts[id]).length });
  });
  // Longest first (in UTF-8 bytes, as llama.cpp); equal lengths keep id order.
  return special.sort((a, b) => b.bytes - a.bytes || a.id - b.id).map((s) => s.id);
}
