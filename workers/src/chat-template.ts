import type { ChatMessage } from './schema.js';

/**
 * Chat prompts without a Jinja engine: the GGUF's `tokenizer.chat_template` is recognised by the
 * markers of a few well-known templates and rendered by hand. Anything else falls back to `plain`.
 * The BOS token is never written here: the prompt is tokenized with the model's own add-BOS rule.
 */
export type TemplateName = 'chatml' | 'llama3' | 'llama2' | 'zephyr' | 'phi3' | 'gemma' | 'plain';

export interface RenderedChat {
  template: TemplateName;
  prompt: string;
  /** Strings that end the assistant's turn when the model does not emit an end-of-generation token. */
  stop: string[];
}

/** Checked in order: the first template whose markers all appear in the GGUF template wins. */
const MARKERS: [TemplateName, string[]][] = [
  ['llama3', ['<|start_header_id|>', '<|eot_id|>']],
  ['chatml', ['<|im_start|>']],
  ['gemma', ['<start_of_turn>']],
  ['phi3', ['<|user|>', '<|end|>']],
  ['zephyr', ['<|user|>']],
  ['llama2', ['[INST]']],
];

export function detectTemplate(template: string | undefined): TemplateName {
  if (!template) return 'plain';
  return MARKERS.find(([, markers]) => markers.every((m) => template.includes(m)))?.[0] ?? 'plain';
}

type Renderer = (messages: ChatMessage[]) => Omit<RenderedChat, 'template'>;

/** One "header + content + terminator" line per message, then the assistant's open header. */
function turns(header: (role: string) => string, end: string, assistantRole = 'assistant'): Renderer {
  return (messages) => ({
    prompt: messages.map((m) => `${header(m.role)}${m.content}${end}`).join('') + header(assistantRole),
    stop: [end.trim()],
  });
}

/** Gemma and Llama 2 have no system role: the system text is folded into the first user message. */
function foldSystem(messages: ChatMessage[], join: (system: string, user: string) => string): ChatMessage[] {
  const system = messages.filter((m) => m.role === 'system').map((m) => m.content).join('\n');
  const rest = messages.filter((m) => m.role !== 'system');
  const first = rest.findIndex((m) => m.role === 'user');
  if (!system) return rest;
  if (first < 0) return [{ role: 'user', content: join(system, '') }, ...rest];
  return rest.map((m, i) => (i === first ? { role: 'user', content: join(system, m.content) } : m));
}

function llama2(messages: ChatMessage[]): Omit<RenderedChat, 'template'> {
  const folded = foldSystem(messages, (system, user) => `<<SYS>>\n${system}\n<</SYS>>\n\n${user}`);
  let prompt = '';
  for (const m of folded) {
    // Each finished exchange is closed with </s> and the next one opened with <s> (the first <s> is the model's BOS).
    prompt += m.role === 'user' ? `${prompt ? '<s>' : ''}[INST] ${m.content.trim()} [/INST]` : ` ${m.content.trim()} </s>`;
  }
  return { prompt, stop: ['</s>', '[INST]'] };
}

function gemma(messages: ChatMessage[]): Omit<RenderedChat, 'template'> {
  const folded = foldSystem(messages, (system, user) => `${system}\n\n${user}`);
  const role = (r: string) => (r === 'assistant' ? 'model' : r);
  return turns((r) => `<start_of_turn>${role(r)}\n`, '<end_of_turn>\n', 'model')(folded);
}

/** The documented fallback for models without a recognised template: plain "User:/Assistant:" turns. */
function plain(messages: ChatMessage[]): Omit<RenderedChat, 'template'> {
  const names = { system: '', user: 'User: ', assistant: 'Assistant: ' };
  const lines = messages.map((m) => (m.role === 'system' ? `${m.content}\n` : `${names[m.role]}${m.content}\n`));
  return { prompt: `${lines.join('')}Assistant:`, stop: ['\nUser:'] };
}

const RENDERERS: Record<TemplateName, Renderer> = {
  chatml: turns((role) => `<|im_start|>${role}\n`, '<|im_end|>\n'),
  llama3: turns((role) => `<|start_header_id|>${role}<|end_header_id|>\n\n`, '<|eot_id|>'),
  zephyr: turns((role) => `<|${role}|>\n`, '</s>\n'),
  phi3: turns((role) => `<|${role}|>\n`, '<|end|>\n'),
  llama2,
  gemma,
  plain,
};

export function renderChat(messages: ChatMessage[], chatTemplate: string | undefined): RenderedChat {
  const template = detectTemplate(chatTemplate);
  return { template, ...RENDERERS[template](messages) };
}
