/**
 * The decode loop's view of a grammar: `compileConstraint(format, tokenizer).start()` gives an immutable state;
 * `advance(id)` gives the next one (or null where the grammar does not allow the token). States are values:
 * keep any number of them to branch drafts or roll back.
 */
import { InvalidArgumentError } from '../errors.js';
import { buildAutomaton } from './automaton.js';
import { parseGbnf } from './gbnf.js';
import type { Grammar } from './ir.js';
import { jsonObjectGrammar, jsonSchemaGrammar } from './json-schema.js';
import { DEAD, Matcher } from './matcher.js';
import { tokenTrie, type ConstraintVocab } from './token-trie.js';

/** What `responseFormat` accepts. */
export type ResponseFormat =
  | { type: 'text' }
  | { type: 'json_object' }
  /** `strict` and `name` are accepted as OpenAI sends them; the schema is always enforced. */
  | { type: 'json_schema'; schema: JsonSchema; strict?: boolean; name?: string }
  | { type: 'grammar'; grammar: string; root?: string };

export type JsonSchema = boolean | { [keyword: string]: unknown };

export interface Constraint {
  readonly vocabSize: number;
  /** The state before any generated token. */
  start(): ConstraintState;
}

export interface ConstraintState {
  /**
   * Allowed tokens as a bitset over the vocabulary (bit id & 31 of word id >>> 5); end-of-generation tokens only
   * once the output is complete. Shared and cached: do not modify it.
   */
  mask(): Uint32Array;
  /** How many tokens `mask()` allows. */
  allowedCount(): number;
  /** Whether the grammar allows token `id` next (cheaper than a mask: it reads only the token's bytes). */
  allows(id: number): boolean;
  /** The state after token `id`, or null where the grammar does not allow it. End-of-generation leads to a finished state. */
  advance(id: number): ConstraintState | null;
  /** The token, when exactly one is allowed (jump-forward: append it without asking the model). */
  forced(): number | undefined;
  /**
   * The bytes every allowed continuation starts with: a key after its opening quote, the punctuation after it, the
   * rest of an enum value once it is unambiguous. Empty where the next byte is open or the output may end.
   */
  forcedBytes(): Uint8Array;
  /**
   * forcedBytes() cut into tokens, longest first: a draft of what the grammar dictates, for the decode loop to
   * verify in one batched pass like the recycle head's drafts (the model may split the text otherwise: with a
   * BPE vocabulary exactly one allowed token, `forced()`, is rare, since "name" can also come as "n", "na", …).
   */
  forcedTokens(): number[];
  /** Whether end-of-generation is allowed (the output so far is complete; it may still go on, e.g. a number). */
  canEnd(): boolean;
  /** Whether nothing but end-of-generation can follow (or it was generated). */
  isComplete(): boolean;
  /** Fewest bytes that complete the output (0 when it can end); an upper bound on the tokens needed. */
  bytesToClose(): number;
  /** The allowed tokens that lie on a shortest completion, for when max_tokens is near. Shared: do not modify it. */
  closingMask(): Uint32Array;
  /**
   * The allowed tokens after which the output can still complete in `budget` bytes (bytesToClose() of the next
   * state), and end-of-generation where the output may end; null when there are none. With `budget` = tokens left
   * after this one minus one (the end takes a slot), a generation that picks only these ends within its tokens where
   * the vocabulary has every single byte. Shared: do not modify it.
   */
  maskWithin(budget: number): Uint32Array | null;
  /** At least the most bytes to completion that any allowed token leaves: a budget this large needs no maskWithin. */
  farthestAfter(): number;
}

/**
 * Compiles a response format for a vocabulary. Throws `UnsupportedParameterError` naming a JSON Schema feature it
 * cannot enforce, and `InvalidArgumentError` for a malformed schema or grammar. Returns null for `{ type: 'text' }`.
 * The last few compiled per tokenizer are kept, so asking again for the same format costs nothing.
 */
export function compileConstraint(format: ResponseFormat, vocab: ConstraintVocab): Constraint | null {
  if (typeof format !== 'object' || format === null) throw new InvalidArgumentError('responseFormat must be an object with a "type".');
  if (format.type === 'text') return null;
  // The same format again (a Worker's next request) gets the compiled grammar with its masks already cached.
  let recent = compiled.get(vocab);
  if (!recent) compiled.set(vocab, (recent = new Map()));
  const key = formatKey(format);
  let constraint = recent.get(key);
  recent.delete(key);
  // One that grew large (json_object over many differently nested outputs) is compiled afresh instead.
  if (!constraint || constraint.matcher.setCount > MAX_KEPT_SETS) constraint = new CompiledConstraint(new Matcher(buildAutomaton(grammarOf(format)), tokenTrie(vocab)));
  recent.set(key, constraint);
  if (recent.size > KEEP_COMPILED) recent.delete(recent.keys().next().value!);
  return constraint;
}

function formatKey(format: ResponseFormat): string {
  try {
    return JSON.stringify(format);
  } catch (e) {
    // A cycle, or nesting deeper than the JSON serializer's stack.
    throw new InvalidArgumentError(`responseFormat cannot be serialized as JSON (${e instanceof Error ? e.message : String(e)}).`);
  }
}

/** Compiled constraints kept per tokenizer, most recent last (each holds up to MASK_CACHE_BYTES of masks). */
const compiled = new WeakMap<ConstraintVocab, Map<string, CompiledConstraint>>();
const KEEP_COMPILED = 4;
const MAX_KEPT_SETS = 16_384;

function grammarOf(format: Exclude<ResponseFormat, { type: 'text' }>): Grammar {
  switch (format.type) {
    case 'json_object':
      return jsonObjectGrammar();
    case 'json_schema':
      if (format.schema === undefined) throw new InvalidArgumentError('responseFormat { type: "json_schema" } needs a "schema".');
      return jsonSchemaGrammar(format.schema);
    case 'grammar':
      if (typeof format.grammar !== 'string') throw new InvalidArgumentError('responseFormat { type: "grammar" } needs a "grammar" string (GBNF).');
      return parseGbnf(format.grammar, format.root);
    default:
      throw new InvalidArgumentError(
        `responseFormat.type must be "text", "json_object", "json_schema" or "grammar", got ${JSON.stringify((format as { type: unknown }).type)}.`,
      );
  }
}

class CompiledConstraint implements Constraint {
  readonly vocabSize: number;
  private readonly isEog: Uint8Array;
  private readonly startState: State;
  /** After end-of-generation: nothing more is allowed. */
  readonly finished: State;
  readonly emptyMask: Uint32Array;

  constructor(readonly matcher: Matcher) {
    this.vocabSize = matcher.trie.vocabSize;
    this.isEog = new Uint8Array(this.vocabSize);
    for (const id of matcher.trie.eog) this.isEog[id] = 1;
    this.startState = new State(this, matcher.start);
    this.finished = new State(this, DEAD);
    this.emptyMask = new Uint32Array(matcher.words);
  }

  start(): ConstraintState {
    return this.startState;
  }

  next(set: number, id: number): number | null {
    if (set === DEAD || !Number.isInteger(id) || id < 0 || id >= this.vocabSize) return null;
    if (this.isEog[id]) return this.matcher.canEnd(set) ? DEAD : null;
    const { tokenBytes, tokenOffset } = this.matcher.trie;
    const end = tokenOffset[id + 1]!;
    if (tokenOffset[id] === end) return null;
    for (let i = tokenOffset[id]!; i < end && set !== DEAD; i++) set = this.matcher.step(set, tokenBytes[i]!);
    return set === DEAD ? null : set;
  }
}

const NO_BYTES = new Uint8Array(0);

class State implements ConstraintState {
  constructor(
    private readonly constraint: CompiledConstraint,
    private readonly set: number,
  ) {}

  mask(): Uint32Array {
    return this.set === DEAD ? this.constraint.emptyMask : this.constraint.matcher.mask(this.set).bits;
  }

  allowedCount(): number {
    return this.set === DEAD ? 0 : this.constraint.matcher.mask(this.set).count;
  }

  allows(id: number): boolean {
    return this.constraint.next(this.set, id) !== null;
  }

  advance(id: number): ConstraintState | null {
    const next = this.constraint.next(this.set, id);
    if (next === null) return null;
    return next === DEAD ? this.constraint.finished : new State(this.constraint, next);
  }

  forced(): number | undefined {
    if (this.set === DEAD) return undefined;
    const { count, first } = this.constraint.matcher.mask(this.set);
    return count === 1 ? first : undefined;
  }

  forcedBytes(): Uint8Array {
    return this.set === DEAD ? NO_BYTES : this.constraint.matcher.forcedBytes(this.set);
  }

  forcedTokens(): number[] {
    return this.constraint.matcher.tokensOf(this.forcedBytes());
  }

  canEnd(): boolean {
    return this.set !== DEAD && this.constraint.matcher.canEnd(this.set);
  }

  isComplete(): boolean {
    return this.set === DEAD || this.constraint.matcher.isComplete(this.set);
  }

  bytesToClose(): number {
    return this.set === DEAD ? 0 : this.constraint.matcher.bytesToClose(this.set);
  }

  closingMask(): Uint32Array {
    return this.set === DEAD ? this.constraint.emptyMask : this.constraint.matcher.closingMask(this.set);
  }

  farthestAfter(): number {
    return this.set === DEAD ? 0 : this.constraint.matcher.farthestAfter(this.set);
  }

  maskWithin(budget: number): Uint32Array | null {
    if (this.set === DEAD) return null;
    const within = this.constraint.matcher.maskWithin(this.set, budget);
    return within.count > 0 ? within.bits : null;
  }
}
