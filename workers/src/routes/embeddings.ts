import { Hono } from 'hono';
import type { EmbeddingRun, Embeddings } from 'recyclegpt';
import { responseBody, type ResponseBody } from '../body.js';
import { badRequest, toOpenAIError } from '../errors.js';
import { keepAlive } from '../generation.js';
import { inOwnContext } from '../own-context.js';
import { modelNotFound } from '../provider.js';
import type { Ticket } from '../queue.js';
import { embeddingSchema, isInputList, jsonBody, type EmbeddingRequest } from '../schema.js';
import type { RouteDeps } from './generate.js';

/** A vector as OpenAI's base64 encoding_format sends it: its float32 values' little-endian bytes. */
function base64(vector: Float32Array): string {
  const bytes = new Uint8Array(vector.buffer, vector.byteOffset, vector.byteLength);
  let text = '';
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(text);
}

function responseJson(result: Embeddings, request: EmbeddingRequest): string {
  const tokens = result.inputTokens.reduce((a, b) => a + b, 0);
  return JSON.stringify({
    object: 'list',
    data: result.vectors.map((vector, index) => ({ object: 'embedding', index, embedding: request.encodingFormat === 'base64' ? base64(vector) : Array.from(vector) })),
    model: request.model,
    usage: { prompt_tokens: tokens, total_tokens: tokens },
    recyclegpt: { pooling: result.pooling, normalized: result.normalized },
  });
}

/**
 * Waits for the model's turn, embeds, writes the JSON. As for generations (see body.ts), the response starts at once
 * and spaces go out while the request waits and computes, so a client that leaves is noticed: it stops the run
 * between passes. The turn is released however it ends.
 */
async function drive(run: EmbeddingRun, request: EmbeddingRequest, ticket: Ticket, body: ResponseBody): Promise<void> {
  const stopHeartbeat = body.heartbeat(' ');
  try {
    try {
      await inOwnContext(ticket.ready(body.gone));
    } catch {
      // The client left while waiting: nothing ran.
      return;
    }
    const result = await run;
    ticket.progress();
    body.write(responseJson(result, request));
  } catch (err) {
    const error = toOpenAIError(err, 'input');
    if (error.status >= 500 && !body.gone.aborted) console.error(err);
    body.write(JSON.stringify(error.body()));
  } finally {
    stopHeartbeat();
    ticket.release();
    body.close();
  }
}

/**
 * POST /v1/embeddings: one vector per input from the SDK's embed() (pooled as the GGUF says, L2-normalised), queued
 * with the generations on the model's one KV cache. Every refusal (400, 404, 429) comes before the response starts.
 */
export function embeddingRoutes(deps: RouteDeps) {
  return new Hono().post('/v1/embeddings', jsonBody(embeddingSchema(deps.limits)), async (c) => {
    const request = c.req.valid('json');
    const known = deps.models.list().map((m) => m.id);
    if (!known.includes(request.model)) throw modelNotFound(request.model, known);
    const model = await inOwnContext(deps.models.get(request.model));
    const { dim } = model.info;
    if (request.dimensions !== undefined && request.dimensions !== dim) {
      throw badRequest(`'dimensions' ${request.dimensions} is not supported: this model's embeddings have ${dim} dimensions. Leave it out or send ${dim}.`, 'dimensions', 'unsupported_parameter');
    }
    const body = responseBody(c.req.raw.signal);
    let run: EmbeddingRun;
    try {
      run = model.embed(request.input, { signal: body.gone });
    } catch (error) {
      throw toOpenAIError(error, 'input');
    }
    const { maxPromptTokens } = deps.limits;
    const tooLong = run.inputTokens.findIndex((n) => n > maxPromptTokens);
    if (tooLong >= 0) {
      const param = isInputList(request.input) ? `input[${tooLong}]` : 'input';
      throw badRequest(`'${param}' is ${run.inputTokens[tooLong]} tokens; this server embeds at most ${maxPromptTokens} tokens per input. Shorten it.`, param, 'context_length_exceeded');
    }
    deps.budget?.tokens(run.inputTokens.reduce((a, b) => a + b, 0), 'input');
    const ticket = deps.queue(request.model).enter();
    keepAlive(c, drive(run, request, ticket, body));
    return new Response(body.stream, { headers: { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-cache' } });
  });
}
