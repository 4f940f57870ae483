/**
 * Tools in chat(): how a model's template family writes tool calls, what the prompt and the output constraint become
 * for each `toolChoice`, and the conversation rewritten for templates that know no tools.
 *
 * Families, told from the template's text:
 * - `hermes` (Qwen2.5, Qwen3 and other Hermes-style templates): `<tool_call>\n{"name": …, "arguments": …}\n</tool_call>`,
 *   any number of them, after optional text.
 * - `llama3` (Llama 3.1–3.3): the whole answer is `{"name": …, "parameters": …}`, optionally after `<|python_tag|>`.
 * - `generic` (any other template, or a fallback format): calls are read in the hermes syntax. A template that renders
 *   `tools` itself gets them (in its own words: a required call is still constrained to the hermes syntax); one that
 *   knows no tools gets them described in the system message with the hermes syntax asked for, and earlier calls and
 *   results are written into the turns as text.
 */
import { InvalidArgumentError, UnsupportedParameterError } from '../errors.js';
import type { JsonSchema, ResponseFormat } from '../grammar/index.js';
import type { ChatMessage, ChatOptions, ToolChoice, ToolDefinition } from '../types.js';
import { toTemplateTools } from './messages.js';

export type ToolFamily = 'hermes' | 'llama3' | 'generic';

/** The family of a model's chat template (undefined: the model has none the SDK can render). */
export function toolFamily(template: string | undefined): ToolFamily {
  if (template === undefined) return 'generic';
  if (template.includes('<tool_call>')) return 'hermes';
  if (template.includes('<|python_tag|>') || (template.includes('<|start_header_id|>') && template.includes('"parameters"'))) return 'llama3';
  return 'generic';
}

export const CALL_OPEN = '<tool_call>';
export const CALL_CLOSE = '</tool_call>';
const RESPONSE_OPEN = '<tool_response>';
const RESPONSE_CLOSE = '</tool_response>';

/** The key of a call's arguments in each family's JSON. */
export const ARGUMENTS_KEY: Record<ToolFamily, 'arguments' | 'parameters'> = { hermes: 'arguments', llama3: 'parameters', generic: 'arguments' };

/** What chat() does differently when tools are offered. */
export interface ToolPlan {
  family: ToolFamily;
  /** Declared tool names: a call to any other is not a call. */
  names: Set<string>;
  /** The conversation and options to render (tools as the template reads them, or written in for `generic`). */
  messages: ChatMessage[];
  options: ChatOptions;
  /** Text appended after the rendered prompt: the call's opening marker when a call is required. */
  prefill: string;
  /** The output must be a call: the JSON that follows `prefill`, constrained to the tools' schemas. */
  forced: boolean;
  /** Where a JSON pointer into the forced call's schema points in the options: `#/tools/<i>/function/parameters/…`. */
  toolPointer(pointer: string): string;
}

/**
 * The plan for `options.tools` and `options.toolChoice`, or null where no call can be made (no tools, or
 * toolChoice 'none': the tools are not offered at all, so the model cannot write a call). Throws for a toolChoice the
 * tools cannot satisfy, and for a `responseFormat` beside tools that may be called (the two constrain the same answer).
 */
export function planTools(messages: ChatMessage[], options: ChatOptions, template: string | undefined): ToolPlan | null {
  const { toolChoice = 'auto' } = options;
  // Checked here first: the plan reads the tools' names.
  const tools = toTemplateTools(options.tools) ?? undefined;
  checkToolChoice(toolChoice, tools);
  if (tools === undefined || tools.length === 0 || toolChoice === 'none') {
    return null;
  }
  if (options.responseFormat !== undefined && options.responseFormat.type !== 'text') {
    throw new InvalidArgumentError("responseFormat and tools cannot be combined (both constrain the answer); pass toolChoice: 'none' or leave responseFormat out");
  }
  const family = toolFamily(template);
  // A template that reads no `tools` variable would drop them: they are written into the conversation instead.
  const writeIn = template === undefined || !/\btools\b/.test(template);
  const names = new Set(tools.map((t) => t.function?.name));
  const offered = typeof toolChoice === 'object' ? tools.filter((t) => t.function.name === toolChoice.function.name) : tools;
  const forced = toolChoice !== 'auto';
  const base: ChatOptions = { ...options, toolChoice: undefined };
  const plan: ToolPlan = {
    family,
    names,
    messages,
    options: writeIn ? { ...base, tools: undefined } : base,
    prefill: forced && family !== 'llama3' ? `${CALL_OPEN}\n` : '',
    forced,
    toolPointer: (pointer) => toolPointer(pointer, offered, tools, ARGUMENTS_KEY[family]),
  };
  if (writeIn) plan.messages = withToolsWrittenIn(messages, tools);
  if (forced) plan.options = { ...plan.options, responseFormat: callFormat(offered, family) };
  return plan;
}

function checkToolChoice(choice: ToolChoice, tools: ToolDefinition[] | undefined): void {
  if (choice === 'none' || choice === 'auto') return;
  if (choice === 'required' || (typeof choice === 'object' && choice !== null && choice.type === 'function' && typeof choice.function?.name === 'string')) {
    if (!tools?.length) throw new InvalidArgumentError('toolChoice asks for a tool call, but no tools are given; pass tools');
    if (typeof choice === 'object' && !tools.some((t) => t.function?.name === choice.function.name)) {
      throw new InvalidArgumentError(`toolChoice names the function ${JSON.stringify(choice.function.name)}, which is not among the tools (${tools.map((t) => t.function?.name).join(', ')})`);
    }
    return;
  }
  throw new InvalidArgumentError(`toolChoice must be 'none', 'auto', 'required' or { type: 'function', function: { name } }, got ${JSON.stringify(choice)}`);
}

/**
 * The JSON a call must be: `{"name": <one of the tools>, "arguments": <its parameters' schema>}` (`parameters` for
 * llama3), name first so that a stream can say which function before its arguments. A schema feature the engine
 * cannot enforce is reported at `#/tools/<i>/function/parameters/…`.
 */
function callFormat(offered: ToolDefinition[], family: ToolFamily): ResponseFormat {
  const key = ARGUMENTS_KEY[family];
  const call = (tool: ToolDefinition, at: string): JsonSchema => ({
    type: 'object',
    properties: { name: { const: tool.function.name }, [key]: rebased(tool.function.parameters ?? { type: 'object' }, `${at}/properties/${key}`) },
    required: ['name', key],
    additionalProperties: false,
  });
  const schema = offered.length === 1 ? call(offered[0]!, '#') : { anyOf: offered.map((tool, i) => call(tool, `#/anyOf/${i}`)) };
  return { type: 'json_schema', schema };
}

/** The schema with its own references (`#`, `#/$defs/…`) pointing where it now sits inside the call's schema. */
function rebased(schema: unknown, at: string): unknown {
  if (Array.isArray(schema)) return schema.map((item) => rebased(item, at));
  if (typeof schema !== 'object' || schema === null) return schema;
  return Object.fromEntries(
    Object.entries(schema).map(([k, v]) => [k, k === '$ref' && typeof v === 'string' && v.startsWith('#') ? at + v.slice(1) : rebased(v, at)]),
  );
}

/** `#/anyOf/1/properties/arguments/x` → `#/tools/<index of that tool>/function/parameters/x`. */
function toolPointer(pointer: string, offered: ToolDefinition[], all: ToolDefinition[], key: string): string {
  const match = new RegExp(`^#(?:/anyOf/(\\d+))?/properties/${key}(.*)$`).exec(pointer);
  if (!match) return pointer;
  const tool = offered[Number(match[1] ?? 0)]!;
  return `#/tools/${all.indexOf(tool)}/function/parameters${match[2]}`;
}

/** Re-points an UnsupportedParameterError raised by a forced call's format at the tool it came from. */
export function rethrowForTools(error: unknown, plan: ToolPlan): never {
  if (error instanceof UnsupportedParameterError) {
    const at = plan.toolPointer(error.parameter);
    throw new UnsupportedParameterError(at, error.message.replace(/\(at [^)]*\)/, `(at ${at})`));
  }
  throw error;
}

/** The instructions a `generic` model gets in its system message (short: small models have small contexts). */
export function genericToolsText(tools: ToolDefinition[]): string {
  const described = tools.map(({ function: f }) => JSON.stringify({ name: f.name, description: f.description, parameters: f.parameters }));
  return `Tools:\n${described.join('\n')}\nTo call one, answer ${CALL_OPEN}{"name": <name>, "arguments": <object>}${CALL_CLOSE}`;
}

/**
 * For templates that know no tools: the tools go into the system message, an assistant's calls into its text in the
 * hermes syntax, and each run of tool results into one user message, so that any template renders the conversation.
 */
function withToolsWrittenIn(messages: ChatMessage[], tools: ToolDefinition[]): ChatMessage[] {
  const out: ChatMessage[] = [];
  const intro = genericToolsText(tools);
  const first = messages[0];
  if (first && (first.role === 'system' || first.role === 'developer') && typeof first.content === 'string') {
    out.push({ role: 'system', content: `${first.content}\n\n${intro}` });
  } else {
    out.push({ role: 'system', content: intro });
    if (first) out.push(first);
  }
  for (const message of messages.slice(1)) {
    if (message.role === 'assistant' && message.toolCalls?.length) {
      const calls = message.toolCalls.map((c) => `${CALL_OPEN}\n${JSON.stringify({ name: c.function.name, arguments: argumentsOf(c.function.arguments) })}\n${CALL_CLOSE}`);
      out.push({ role: 'assistant', content: [textOf(message.content), ...calls].filter(Boolean).join('\n') });
    } else if (message.role === 'tool') {
      const result = `${RESPONSE_OPEN}\n${textOf(message.content)}\n${RESPONSE_CLOSE}`;
      const last = out[out.length - 1]!;
      if (last.role === 'user' && typeof last.content === 'string' && last.content.startsWith(RESPONSE_OPEN)) last.content += `\n${result}`;
      else out.push({ role: 'user', content: result });
    } else out.push(message);
  }
  return out;
}

const textOf = (content: ChatMessage['content']) => (typeof content === 'string' ? content : content === null ? '' : content.map((p) => p.text).join('\n'));

function argumentsOf(value: string | Record<string, unknown>): unknown {
  if (typeof value !== 'string') return value;
  try {
    return JSON.parse(value);
  } catch {
    return value;
  }
}
