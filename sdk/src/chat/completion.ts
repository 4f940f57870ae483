import type { ChatCompletion, TokenStream } from '../types.js';

/** A chat stream collected: the answer, and the reasoning apart from it (without the newline that closes the block). */
export async function collectChat(stream: TokenStream): Promise<ChatCompletion> {
  const tokens: number[] = [];
  let content = '';
  let reasoning: string | undefined;
  for await (const token of stream) {
    tokens.push(token.id);
    if (token.channel === 'reasoning') reasoning = (reasoning ?? '') + token.text;
    else content += token.text;
  }
  const stats = await stream.stats;
  return { content, ...(reasoning !== undefined && { reasoning: reasoning.trimEnd() }), tokens, finishReason: stats.finishReason, stats };
}
