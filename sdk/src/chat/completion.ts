import type { ChatCompletion, CompletedToolCall, TokenStream, ToolCallDelta } from '../types.js';

/** Tool-call pieces joined into calls, in order of their index. */
export function joinToolCalls(deltas: ToolCallDelta[]): CompletedToolCall[] {
  const calls: CompletedToolCall[] = [];
  for (const delta of deltas) {
    const call = (calls[delta.index] ??= { id: '', type: 'function', function: { name: '', arguments: '' } });
    if (delta.id) call.id = delta.id;
    if (delta.function.name) call.function.name = delta.function.name;
    call.function.arguments += delta.function.arguments ?? '';
  }
  return calls;
}

/**
 * A chat stream collected: the answer, the reasoning apart from it (without the newline that closes the block), and
 * the tool calls. An answer that made calls and ended by itself finishes with 'tool_calls'; text around the calls
 * that is only white space is no content.
 */
export async function collectChat(stream: TokenStream): Promise<ChatCompletion> {
  const tokens: number[] = [];
  const deltas: ToolCallDelta[] = [];
  let content = '';
  let reasoning: string | undefined;
  for await (const token of stream) {
    tokens.push(token.id);
    if (token.toolCalls) deltas.push(...token.toolCalls);
    if (token.channel === 'reasoning') reasoning = (reasoning ?? '') + token.text;
    else if (token.channel !== 'tool') content += token.text;
  }
  const stats = await stream.stats;
  const toolCalls = joinToolCalls(deltas);
  if (toolCalls.length === 0) return { content, ...(reasoning !== undefined && { reasoning: reasoning.trimEnd() }), tokens, finishReason: stats.finishReason, stats };
  return {
    content: content.trim() ? content : '',
    ...(reasoning !== undefined && { reasoning: reasoning.trimEnd() }),
    toolCalls,
    tokens,
    finishReason: stats.finishReason === 'stop' ? 'tool_calls' : stats.finishReason,
    stats,
  };
}
