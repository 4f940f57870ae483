/**
 * A model's chat format: its own `tokenizer.chat_template` rendered by @huggingface/jinja (the engine transformers.js
 * uses, with Hugging Face's `trim_blocks`/`lstrip_blocks` and its `raise_exception`, `tojson` and `strftime_now`),
 * or, for a GGUF without a template the engine can parse, a guessed fallback format.
 */
import { Template } from '@huggingface/jinja';
import { InvalidArgumentError } from '../errors.js';
import type { Tokenizer } from '../tokenizer/types.js';
import type { ToolDefinition } from '../types.js';
import { FALLBACK_RENDERERS, detectFallback, type FallbackName, type FallbackPrompt } from './fallback.js';
import type { TemplateMessage } from './messages.js';

/** What renders a conversation: the GGUF's template, or the fallback format named. */
export type ChatRenderer = 'template' | FallbackName;

export interface RenderInput {
  messages: TemplateMessage[];
  tools: ToolDefinition[] | null;
  /** Further template variables (e.g. Qwen3's `enable_thinking`). */
  templateOptions: Record<string, unknown>;
}

export interface ChatFormat {
  renderer: ChatRenderer;
  /** The texts of BOS and EOS as templates write them ('' where the vocabulary has none). */
  bosToken: string;
  eosToken: string;
  /** The prompt, ending with the assistant's turn opened, and stop strings the format adds. */
  render(input: RenderInput): FallbackPrompt;
}

/** Variables the SDK sets itself, which `templateOptions` may not replace. */
export const RESERVED_TEMPLATE_VARIABLES = ['messages', 'tools', 'add_generation_prompt', 'bos_token', 'eos_token'];

export function chatFormat(source: string | undefined, tokenizer: Tokenizer): ChatFormat {
  const bosToken = tokenizer.bos === undefined ? '' : tokenizer.tokenText(tokenizer.bos);
  const eosToken = tokenizer.eos === undefined ? '' : tokenizer.tokenText(tokenizer.eos);
  let template: Template | undefined;
  if (source !== undefined) {
    try {
      template = new Template(source);
    } catch {
      // A template this engine cannot parse: its markers still tell its family.
    }
  }
  if (template) {
    const parsed = template;
    return {
      renderer: 'template',
      bosToken,
      eosToken,
      render(input) {
        try {
          return { text: parsed.render(templateVariables(input, bosToken, eosToken)), stop: [] };
        } catch (error) {
          // raise_exception (e.g. "Conversation roles must alternate") or a value the template cannot handle.
          throw new InvalidArgumentError(`the model's chat template refused this conversation: ${(error as Error).message}`);
        }
      },
    };
  }
  const has = source !== undefined ? (marker: string) => source.includes(marker) : (marker: string) => tokenOf(tokenizer, marker) !== undefined;
  const renderer = detectFallback(has);
  return { renderer, bosToken, eosToken, render: ({ messages }) => FALLBACK_RENDERERS[renderer](messages) };
}

/** What a template is rendered with, as Hugging Face's apply_chat_template passes it (the parity test gives Jinja2 the same). */
export function templateVariables({ messages, tools, templateOptions }: RenderInput, bosToken: string, eosToken: string): Record<string, unknown> {
  return { ...templateOptions, messages, tools, add_generation_prompt: true, bos_token: bosToken, eos_token: eosToken };
}

/** The id of the token whose text is `text` exactly, if the vocabulary has one. */
export function tokenOf(tokenizer: Tokenizer, text: string): number | undefined {
  const ids = tokenizer.encode(text, { addSpecial: false, parseSpecial: true });
  return ids.length === 1 && tokenizer.tokenText(ids[0]!) === text ? ids[0] : undefined;
}
