/** Chat messages and tool definitions, checked and put in the shape chat templates read (Hugging Face's). */
import { InvalidArgumentError } from '../errors.js';
import type { ChatMessage, ToolDefinition } from '../types.js';

/**
 * A message as chat templates read it: OpenAI's fields in snake_case, text content as one string. A null content
 * (an assistant's tool calls) is given as '': some templates (Qwen3's) fail on null, and every one renders ''.
 */
export interface TemplateMessage {
  role: string;
  content: string;
  tool_calls?: { id?: string; type: 'function'; function: { name: string; arguments: unknown } }[];
  tool_call_id?: string;
  name?: string;
}

const ROLES = ['system', 'developer', 'user', 'assistant', 'tool'];

/** Checks `messages` and converts them; a `developer` message is a system message to the templates, which know no other. */
export function toTemplateMessages(messages: ChatMessage[]): TemplateMessage[] {
  if (!Array.isArray(messages) || messages.length === 0) throw new InvalidArgumentError('messages must be a non-empty array of chat messages');
  return messages.map((message, i) => {
    const at = `messages[${i}]`;
    if (typeof message !== 'object' || message === null) throw new InvalidArgumentError(`${at} must be an object with a role and content`);
    const { role } = message;
    if (!ROLES.includes(role)) throw new InvalidArgumentError(`${at}.role must be one of ${ROLES.join(', ')}, got ${JSON.stringify(role)}`);
    const out: TemplateMessage = { role: role === 'developer' ? 'system' : role, content: textOf(message, at) };
    if (message.toolCalls !== undefined) {
      if (role !== 'assistant') throw new InvalidArgumentError(`${at}.toolCalls: only assistant messages make tool calls`);
      if (!Array.isArray(message.toolCalls)) throw new InvalidArgumentError(`${at}.toolCalls must be an array`);
      out.tool_calls = message.toolCalls.map((call, j) => {
        const fn = call?.function;
        if (typeof fn?.name !== 'string') throw new InvalidArgumentError(`${at}.toolCalls[${j}].function.name must be a string`);
        return { ...(call.id !== undefined && { id: call.id }), type: 'function', function: { name: fn.name, arguments: argumentsOf(fn.arguments) } };
      });
    }
    if (message.toolCallId !== undefined) {
      if (typeof message.toolCallId !== 'string') throw new InvalidArgumentError(`${at}.toolCallId must be a string`);
      out.tool_call_id = message.toolCallId;
    }
    if (message.name !== undefined) {
      if (typeof message.name !== 'string') throw new InvalidArgumentError(`${at}.name must be a string`);
      out.name = message.name;
    }
    return out;
  });
}

/** Text parts are joined by newlines, as llama.cpp does for templates that take a string. */
function textOf(message: ChatMessage, at: string): string {
  const { content } = message;
  if (typeof content === 'string') return content;
  if (content === null) {
    if (message.role === 'assistant' && message.toolCalls?.length) return '';
    throw new InvalidArgumentError(`${at}.content may be null only in an assistant message with tool calls`);
  }
  if (Array.isArray(content)) {
    return content
      .map((part, j) => {
        if (part?.type !== 'text' || typeof part.text !== 'string') {
          throw new InvalidArgumentError(`${at}.content[${j}] must be a text part ({ type: 'text', text }); this engine reads text only`);
        }
        return part.text;
      })
      .join('\n');
  }
  throw new InvalidArgumentError(`${at}.content must be a string, an array of text parts, or null`);
}

/** Templates format arguments as JSON themselves (`tojson`), so a JSON string (OpenAI's form) is parsed first. */
function argumentsOf(value: unknown): unknown {
  if (typeof value !== 'string') return value ?? {};
  try {
    return JSON.parse(value);
  } catch {
    return value;
  }
}

/** Tool definitions as templates read them: OpenAI's shape, as plain JSON. */
export function toTemplateTools(tools: ToolDefinition[] | undefined): ToolDefinition[] | null {
  if (tools === undefined) return null;
  if (!Array.isArray(tools)) throw new InvalidArgumentError('tools must be an array of tool definitions');
  tools.forEach((tool, i) => {
    if (tool?.type !== 'function' || typeof tool.function?.name !== 'string') {
      throw new InvalidArgumentError(`tools[${i}] must be { type: 'function', function: { name, description?, parameters? } }`);
    }
  });
  return JSON.parse(JSON.stringify(tools)) as ToolDefinition[];
}

/**
 * The conversation without its `dropped` oldest turns. A turn starts at a user message and runs to the next one (the
 * assistant's answer, its tool calls and their results); system messages are never dropped.
 */
export function withoutOldestTurns(messages: TemplateMessage[], dropped: number): TemplateMessage[] {
  if (dropped === 0) return messages;
  const cut = turnStarts(messages)[dropped]!;
  return messages.filter((m, i) => m.role === 'system' || i >= cut);
}

/** How many turns can be dropped: all but the last (the one the model answers). */
export function droppableTurns(messages: TemplateMessage[]): number {
  return Math.max(0, turnStarts(messages).length - 1);
}

/** Index of the first message of each turn (non-system messages before the first user message are a turn of their own). */
function turnStarts(messages: TemplateMessage[]): number[] {
  const starts: number[] = [];
  messages.forEach((m, i) => {
    if (m.role === 'system') return;
    if (m.role === 'user' || starts.length === 0) starts.push(i);
  });
  return starts;
}
