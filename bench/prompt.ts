/** The benchmark's prompt, as token ids of a bench model's own vocabulary. */
import { readGGUFHeader } from '../sdk/src/gguf/load.js';
import '../sdk/src/node.js'; // the SDK's Node entry: model files by path
import { createTokenizer } from '../sdk/src/tokenizer/index.js';

const PROMPT =
  'Once upon a time, in a small village by the sea, there lived an old fisherman who told stories to the children. ' +
  'Every evening they gathered on the beach to hear about storms, whales and the lights that danced over the water.';

/** The prompt's ids for the GGUF at `path` (a few dozen tokens). */
export async function promptIds(path: string): Promise<number[]> {
  return createTokenizer((await readGGUFHeader(path)).metadata).encode(PROMPT);
}

/** `ids` repeated to `n` ids (a long prompt for prefill). */
export function repeated(ids: number[], n: number): number[] {
  return Array.from({ length: n }, (_, i) => ids[i % ids.length]!);
}
