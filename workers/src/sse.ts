import { toHttpError } from './errors.js';

const encoder = new TextEncoder();

/**
 * Server-sent events in OpenAI's dialect: one `data: <json>` event per chunk, then `data: [DONE]`.
 * `onCancel` runs when the client goes away (the runtime cancels the body stream), so generation can stop.
 */
export function sseResponse(chunks: AsyncIterable<unknown>, onCancel: () => void): Response {
  const iterator = chunks[Symbol.asyncIterator]();
  // A pull already under way when the client leaves must not write into the cancelled stream.
  let cancelled = false;
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const next = await iterator.next();
        if (cancelled) return;
        if (next.done) {
          controller.enqueue(encoder.encode('data: [DONE]\n\n'));
          controller.close();
        } else {
          controller.enqueue(encoder.encode(`data: ${JSON.stringify(next.value)}\n\n`));
        }
      } catch (err) {
        if (cancelled) return;
        // Headers are gone already: the error travels as a last event, OpenAI-style.
        controller.enqueue(encoder.encode(`data: ${JSON.stringify(toHttpError(err).body())}\n\n`));
        controller.close();
      }
    },
    async cancel() {
      cancelled = true;
      onCancel();
      await iterator.return?.();
    },
  });
  return new Response(body, {
    headers: { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' },
  });
}
