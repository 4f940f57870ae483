/**
 * The body of a generation response, written as tokens come, and the ways to tell that its client left.
 *
 * What the runtimes deliver when a client disconnects (measured over real sockets, see workers/README.md):
 * workerd notices only when it writes to the socket. Then it aborts `request.signal` (with the
 * enable_request_signal flag) and cancels the body stream, provided the request is kept alive by waitUntil
 * (without it the request's timers stop and nothing runs at all). A handler that has not returned its
 * Response, or a body nothing is written to, is never told. @hono/node-server cancels the body stream and
 * aborts the request's signal on the socket's close. So the body is returned at once and something is
 * written regularly: a token, or while waiting a heartbeat (an SSE comment; for JSON, a space, which JSON
 * allows before a value). Any of these ends the generation: the request's signal, the stream's cancel, a
 * failed enqueue, more than MAX_BACKLOG_BYTES unread (a client that stopped reading), or no read for
 * STALL_MS while bytes wait.
 */

/** Unread bytes past which the client counts as gone: far more than any response's tokens a live client leaves waiting. */
export const MAX_BACKLOG_BYTES = 1 << 20;
/** A client with bytes waiting that has read nothing for this long counts as gone. */
export const STALL_MS = 30_000;
/** While a request waits for the model, a heartbeat this often lets a disconnect be noticed. */
export const HEARTBEAT_MS = 1_000;

/** The reason `gone` carries. */
export class ClientGone extends Error {
  constructor(why: string) {
    super(`The client went away (${why}).`);
    this.name = 'ClientGone';
  }
}

export interface ResponseBody {
  readonly stream: ReadableStream<Uint8Array>;
  /** Aborted as soon as any sign says the client is gone. */
  readonly gone: AbortSignal;
  write(text: string): void;
  /** Writes `text` every HEARTBEAT_MS until the returned function is called. */
  heartbeat(text: string): () => void;
  close(): void;
}

const encoder = new TextEncoder();

export function responseBody(requestSignal: AbortSignal | undefined, now: () => number = Date.now): ResponseBody {
  const goneController = new AbortController();
  const leave = (why: string) => {
    if (!goneController.signal.aborted) goneController.abort(new ClientGone(why));
  };
  requestSignal?.addEventListener('abort', () => leave('request aborted'), { once: true });
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  let closed = false;
  // When the reader last found nothing to read: with highWaterMark 0, pull() is called exactly then.
  let caughtUp = now();
  const stream = new ReadableStream<Uint8Array>(
    {
      start: (c) => void (controller = c),
      pull: () => void (caughtUp = now()),
      cancel: () => leave('response stream cancelled'),
    },
    { highWaterMark: 0, size: (chunk) => chunk.byteLength },
  );

  const write = (text: string) => {
    if (text === '' || closed || goneController.signal.aborted) return;
    try {
      controller.enqueue(encoder.encode(text));
    } catch {
      return leave('write failed');
    }
    const backlog = -(controller.desiredSize ?? 0);
    if (backlog > MAX_BACKLOG_BYTES) leave(`${backlog} bytes unread`);
    else if (backlog > 0 && now() - caughtUp > STALL_MS) leave(`nothing read for ${Math.round((now() - caughtUp) / 1000)} s`);
  };
  return {
    stream,
    gone: goneController.signal,
    write,
    heartbeat(text) {
      const timer = setInterval(() => write(text), HEARTBEAT_MS);
      return () => clearInterval(timer);
    },
    close() {
      if (closed) return;
      closed = true;
      try {
        controller.close();
      } catch {
        // Already cancelled by the client.
      }
    },
  };
}
