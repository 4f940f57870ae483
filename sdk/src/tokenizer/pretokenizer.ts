/**
 * The pre-tokenizers (text → words before BPE) that llama.cpp selects by `tokenizer.ggml.pre`.
 * llama.cpp runs hand-written versions of these regexes; the JS regexes below give the same splits
 * provided whitespace is llama.cpp's set, not JS's \s (which adds U+FEFF and lacks U+0085).
 */
import { UnsupportedError } from '../errors.js';

const WS = '\\t-\\r \\x85\\xA0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000';
const SPACE = `[${WS}]`;
const NOT_SPACE = `[^${WS}]`;
const OTHER = `[^${WS}\\p{L}\\p{N}]`;

const CONTRACTIONS = "'s|'t|'re|'ve|'m|'ll|'d";
const CONTRACTIONS_ANY_CASE = "'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD]";
const GPT2 = `${CONTRACTIONS}| ?\\p{L}+| ?\\p{N}+| ?${OTHER}+|${SPACE}+(?!${NOT_SPACE})|${SPACE}+`;
/** Llama 3's split; Qwen2's differs only in taking digits one at a time (`digits` "{1,3}" vs ""). */
const llama3Like = (digits: string) =>
  `${CONTRACTIONS_ANY_CASE}|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}${digits}` +
  `| ?${OTHER}+[\\r\\n]*|${SPACE}*[\\r\\n]+|${SPACE}+(?!${NOT_SPACE})|${SPACE}+`;

interface PreTokenizerSpec {
  /** Applied in turn: each splits every piece so far into its matches and the text between them. */
  patterns: string[];
  /** A whole word that is a token is emitted as is, without merges (llama.cpp's ignore_merges). */
  ignoreMerges?: boolean;
  /** llama.cpp's add_bos default for this pre-tokenizer (the GGUF key overrides it). */
  addBos?: boolean;
  /** llama.cpp's clean_spaces (tidy " ," " 's" and the like when detokenizing): on unless the pre-tokenizer turns it off. */
  cleanSpaces?: boolean;
}

const DEFAULT: PreTokenizerSpec = { patterns: ['[\\p{P}$+<=>^~|]+', GPT2, '\\p{N}+', '[0-9]{3}'] };
const GPT2_SPEC: PreTokenizerSpec = { patterns: [GPT2] };
const LLAMA3_SPEC: PreTokenizerSpec = { patterns: [llama3Like('{1,3}')], ignoreMerges: true, addBos: true };
const QWEN2_SPEC: PreTokenizerSpec = { patterns: [llama3Like('')], cleanSpaces: false };
/** SmolLM (StarCoder's split): every digit alone, then GPT-2's split. */
const SMOLLM_SPEC: PreTokenizerSpec = { patterns: ['\\p{N}', GPT2], cleanSpaces: false };

const SPECS: Record<string, PreTokenizerSpec> = {
  default: DEFAULT,
  ...Object.fromEntries(['gpt-2', 'phi-2', 'mpt', 'olmo'].map((name) => [name, GPT2_SPEC])),
  ...Object.fromEntries(
    ['llama3', 'llama-v3', 'llama-bpe', 'falcon3', 'falcon-h1', 'pixtral', 'midm-2.0', 'lfm2', 'jina-v5-nano'].map((name) => [name, LLAMA3_SPEC]),
  ),
  ...Object.fromEntries(['qwen2', 'deepseek-r1-qwen'].map((name) => [name, QWEN2_SPEC])),
  smollm: SMOLLM_SPEC,
};

export interface PreTokenizer {
  split(text: string): string[];
  readonly ignoreMerges: boolean;
  readonly addBos: boolean;
  readonly cleanSpaces: boolean;
}

/** `pre` absent means llama.cpp's "default" (with its warning that quality may suffer). */
export function preTokenizer(pre: string | undefined): PreTokenizer {
  const spec = SPECS[pre ?? 'default'];
  if (!spec) {
    throw new UnsupportedError(
      `tokenizer.ggml.pre "${pre}" is not supported (supported: ${Object.keys(SPECS).join(', ')}). Use a model with one of these pre-tokenizers.`,
    );
  }
  const regexes = spec.patterns.map((pattern) => new RegExp(pattern, 'gu'));
  return {
    split: (text) => regexes.reduce((pieces, regex) => pieces.flatMap((piece) => splitKeepingAll(piece, regex)), [text]),
    ignoreMerges: spec.ignoreMerges ?? false,
    addBos: spec.addBos ?? false,
    cleanSpaces: spec.cleanSpaces ?? true,
  };
}

/** Matches and the unmatched text between them, in order (std::regex_iterator as llama.cpp uses it). */
function splitKeepingAll(text: string, regex: RegExp): string[] {
  const pieces: string[] = [];
  let end = 0;
  for (const match of text.matchAll(regex)) {
    if (match.index > end) pieces.push(text.slice(end, match.index));
    pieces.push(match[0]);
    end = match.index + match[0].length;
  }
  if (end < text.length) pieces.push(text.slice(end));
  return pieces;
}
