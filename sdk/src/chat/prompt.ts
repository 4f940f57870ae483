/** A conversation → the prompt's token ids: rendered, tokenized as llama.cpp does, fitted to the context. */
import { ContextFullError, InvalidArgumentError } from '../errors.js';
import { checkGenerateOptions } from '../decode/options.js';
import type { ReasoningMarkers } from '../generate.js';
import type { Tokenizer } from '../tokenizer/types.js';
import type { ChatMessage, ChatOptions, RenderedChat } from '../types.js';
import { droppableTurns, toTemplateMessages, toTemplateTools, withoutOldestTurns } from './messages.js';
import { RESERVED_TEMPLATE_VARIABLES, tokenOf, type ChatFormat } from './template.js';

export interface ChatPrompt extends RenderedChat {
  /** Stop strings the format adds to the caller's. */
  stop: string[];
  /** The reasoning markers, where tokens are to be told apart by channel. */
  reasoning?: ReasoningMarkers;
}

/**
 * Renders `messages` and tokenizes the result. A conversation longer than the context is a CONTEXT_FULL error, or
 * with `truncate: 'oldest'` loses its oldest turns until the prompt leaves room for `maxTokens` (or only the last
 * turn is left, which must then fit the context).
 */
export function buildChatPrompt(format: ChatFormat, tokenizer: Tokenizer, messages: ChatMessage[], options: ChatOptions, contextLength: number, prefill = ''): ChatPrompt {
  const { maxTokens } = checkGenerateOptions(options);
  const { truncate = 'error', reasoning = 'separate', templateOptions = {} } = options;
  if (truncate !== 'error' && truncate !== 'oldest') throw new InvalidArgumentError(`truncate must be 'error' or 'oldest', got ${JSON.stringify(truncate)}`);
  if (reasoning !== 'separate' && reasoning !== 'inline') throw new InvalidArgumentError(`reasoning must be 'separate' or 'inline', got ${JSON.stringify(reasoning)}`);
  if (typeof templateOptions !== 'object' || templateOptions === null || Array.isArray(templateOptions)) {
    throw new InvalidArgumentError('templateOptions must be an object of template variables');
  }
  const reserved = Object.keys(templateOptions).find((key) => RESERVED_TEMPLATE_VARIABLES.includes(key));
  if (reserved) throw new InvalidArgumentError(`templateOptions.${reserved} is set by the SDK; pass it as chat()'s own argument or option`);
  const all = toTemplateMessages(messages);
  const tools = toTemplateTools(options.tools);

  const render = (dropped: number) => {
    const kept = withoutOldestTurns(all, dropped);
    const rendered = format.render({ messages: kept, tools, templateOptions });
    // The answer's start when it is dictated (a required tool call's opening marker).
    const text = rendered.text + prefill;
    return { text, stop: rendered.stop, ids: tokenize(tokenizer, format, text), droppedMessages: all.length - kept.length };
  };
  let prompt = render(0);
  if (truncate === 'oldest' && prompt.ids.length + maxTokens > contextLength) {
    // The fewest oldest turns to drop so that the answer has room, found by bisection (each try renders once).
    let lo = 1;
    let hi = droppableTurns(all);
    let best = hi > 0 ? render(hi) : prompt;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const tried = render(mid);
      if (tried.ids.length + maxTokens <= contextLength) {
        best = tried;
        hi = mid;
      } else lo = mid + 1;
    }
    prompt = best;
  }
  if (prompt.ids.length > contextLength) {
    const remedy =
      truncate === 'oldest'
        ? 'even its last turn with the system messages is too long; shorten them or load the model with a larger contextLength'
        : "shorten the conversation, pass truncate: 'oldest' to drop its oldest turns, or load the model with a larger contextLength";
    throw new ContextFullError(prompt.ids.length, contextLength, remedy);
  }
  return {
    text: prompt.text,
    ids: prompt.ids,
    renderer: format.renderer,
    droppedMessages: prompt.droppedMessages,
    stop: prompt.stop,
    reasoning: reasoning === 'separate' ? reasoningMarkers(tokenizer, prompt.text) : undefined,
  };
}

/**
 * The rendered text as llama.cpp tokenizes a chat prompt: special-token text parsed, BOS/EOS added by the model's
 * rule, and the template's own BOS (or final EOS) text dropped where the tokenizer adds one, so it is not doubled.
 */
function tokenize(tokenizer: Tokenizer, format: ChatFormat, text: string): number[] {
  let body = text;
  if (tokenizer.addBos && format.bosToken && body.startsWith(format.bosToken)) body = body.slice(format.bosToken.length);
  if (tokenizer.addEos && format.eosToken && body.endsWith(format.eosToken)) body = body.slice(0, -format.eosToken.length);
  return tokenizer.encode(body, { addSpecial: true, parseSpecial: true });
}

const OPEN = '<think>';
const CLOSE = '</think>';

/** The `<think>`/`</think>` tokens where the vocabulary has both, and whether the prompt leaves a block open. */
function reasoningMarkers(tokenizer: Tokenizer, prompt: string): ReasoningMarkers | undefined {
  const open = tokenOf(tokenizer, OPEN);
  const close = tokenOf(tokenizer, CLOSE);
  if (open === undefined || close === undefined) return undefined;
  return { open, close, inside: prompt.lastIndexOf(OPEN) > prompt.lastIndexOf(CLOSE) };
}
