/**
 * Chat prompts for a GGUF without a usable `tokenizer.chat_template` (none, or one the Jinja engine cannot parse): the
 * format is guessed from the markers of a few well-known templates, found in the template text or, without one, among
 * the vocabulary's tokens, and rendered by hand. Anything else gets plain "User:/Assistant:" turns. The BOS token is
 * never written here: the prompt is tokenized with the model's own add-BOS rule.
 */
import type { TemplateMessage } from './messages.js';

export type FallbackName = 'chatml' | 'llama3' | 'llama2' | 'zephyr' | 'phi3' | 'gemma' | 'plain';

export interface FallbackPrompt {
  text: string;
  /** Strings that end the assistant's turn when the model does not emit an end-of-generation token. */
  stop: string[];
}

/** Checked in order: the first format whose markers are all present wins. */
const MARKERS: [FallbackName, string[]][] = [
  ['llama3', ['<|start_header_id|>', '<|eot_id|>']],
  ['chatml', ['<|im_start|>']],
  ['gemma', ['<start_of_turn>']],
  ['phi3', ['<|user|>', '<|end|>']],
  ['zephyr', ['<|user|>']],
  ['llama2', ['[INST]']],
];

/** The format whose markers `has` finds (in a template's text, or among a vocabulary's tokens). */
export function detectFallback(has: (marker: string) => boolean): FallbackName {
  return MARKERS.find(([, markers]) => markers.every(has))?.[0] ?? 'plain';
}

type Renderer = (messages: TemplateMessage[]) => FallbackPrompt;

const text = (m: TemplateMessage) => m.content;

/** One "header + content + terminator" line per message, then the assistant's open header. */
function turns(header: (role: string) => string, end: string, assistantRole = 'assistant'): Renderer {
  return (messages) => ({
    text: messages.map((m) => `${header(m.role)}${text(m)}${end}`).join('') + header(assistantRole),
    stop: [end.trim()],
  });
}

/** Gemma and Llama 2 have no system role: the system text is folded into the first user message. */
function foldSystem(messages: TemplateMessage[], join: (system: string, user: string) => string): TemplateMessage[] {
  const system = messages.filter((m) => m.role === 'system').map(text).join('\n');
  const rest = messages.filter((m) => m.role !== 'system');
  const first = rest.findIndex((m) => m.role === 'user');
  if (!system) return rest;
  if (first < 0) return [{ role: 'user', content: join(system, '') }, ...rest];
  return rest.map((m, i) => (i === first ? { role: 'user', content: join(system, text(m)) } : m));
}

function llama2(messages: TemplateMessage[]): FallbackPrompt {
  const folded = foldSystem(messages, (system, user) => `<<SYS>>\n${system}\n<</SYS>>\n\n${user}`);
  let prompt = '';
  for (const m of folded) {
    // Each finished exchange is closed with </s> and the next one opened with <s> (the first <s> is the model's BOS).
    prompt += m.role === 'assistant' ? ` ${text(m).trim()} </s>` : `${prompt ? '<s>' : ''}[INST] ${text(m).trim()} [/INST]`;
  }
  return { text: prompt, stop: ['</s>', '[INST]'] };
}

function gemma(messages: TemplateMessage[]): FallbackPrompt {
  const folded = foldSystem(messages, (system, user) => `${system}\n\n${user}`);
  const role = (r: string) => (r === 'assistant' ? 'model' : r);
  return turns((r) => `<start_of_turn>${role(r)}\n`, '<end_of_turn>\n', 'model')(folded);
}

/**
 * After "Assistant:" an answer keeps the whitespace the model wrote first (a space or a newline), so that a conversation
 * sent back renders to the tokens the generation left in the KV cache (and reuses them); other text gets a space.
 */
const answer = (content: string) => (/^\s/.test(content) ? content : ` ${content}`);

/** The documented fallback for models without a recognised format: plain "User:/Assistant:" turns. */
function plain(messages: TemplateMessage[]): FallbackPrompt {
  const names: Record<string, string> = { user: 'User: ', tool: 'Tool: ' };
  const lines = messages.map((m) => (m.role === 'assistant' ? `Assistant:${answer(text(m))}\n` : `${names[m.role] ?? ''}${text(m)}\n`));
  return { text: `${lines.join('')}Assistant:`, stop: ['\nUser:'] };
}

export const FALLBACK_RENDERERS: Record<FallbackName, Renderer> = {
  chatml: turns((role) => `<|im_start|>${role}\n`, '<|im_end|>\n'),
  llama3: turns((role) => `<|start_header_id|>${role}<|end_header_id|>\n\n`, '<|eot_id|>'),
  zephyr: turns((role) => `<|${role}|>\n`, '</s>\n'),
  phi3: turns((role) => `<|${role}|>\n`, '<|end|>\n'),
  llama2,
  gemma,
  plain,
};
