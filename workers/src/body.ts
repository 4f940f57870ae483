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
 * allows before a value), and the generation waits for the runtime to copy it (`flow`). Any of these ends
 * the generation: the request's signal, the stream's cancel, a failed enqueue, or bytes left unread for STALL_MS.
 */

/** Chunks the reader may leave unread before the generation waits for it (see `flow`). */
export const MAX_PENDING_CHUNKS = 4;
/**
 * A client that leaves written bytes unread this long counts as gone. The reader is the runtime copying
 * to the socket, which keeps up at once unless the socket's buffers (hundreds of KB, minutes of tokens)
 * are full; but in `wrangler dev` the body of a client that left is sometimes neither read nor
 * cancelled (its proxy logs "Network connection lost" and drops it), and only this notices.
 */
export const STALL_MS = 5_000;
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
  /**
   * Waits while more than MAX_PENDING_CHUNKS are unread. A generation computes without pause, and the
   * runtime's copy of the body to the socket (which needs the same thread) falls behind; only the
   * socket write that fails tells workerd that the client left. Waiting here lets it catch up, so a
   * disconnect is noticed within a few tokens; a reader that catches up with nothing for STALL_MS is gone.
   */
  flow(): Promise<void>;
  /** Writes `text` every HEARTBEAT_MS until the returned function is called. */
  heartbeat(text: string): () => void;
  close(): void;
}

const encoder = new TextEncoder();

export function responseBody(requestSignal: AbortSignal | undefined, now: () => number = Date.now): ResponseBody {
  const goneController = new AbortController();
  const gone = goneController.signal;
  const leave = (why: string) => {
    if (!gone.aborted) goneController.abort(new ClientGone(why));
  };
  requestSignal?.addEventListener('abort', () => leave('request aborted'), { once: true });
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  let closed = false;
  // With highWaterMark 0, pull() is called exactly when the reader has read everything and wants more.
  let caughtUp = now();
  // Whether the runtime ever started to read: a body it never reads is stalled from the start.
  let reading = false;
  let onCaughtUp: (() => void) | undefined;
  const stream = new ReadableStream<Uint8Array>(
    {
      start: (c) => void (controller = c),
      pull: () => {
        caughtUp = now();
        reading = true;
        onCaughtUp?.();
      },
      cancel: () => leave('response stream cancelled'),
    },
    // Counted in chunks: desiredSize is minus the chunks not read yet.
    { highWaterMark: 0, size: () => 1 },
  );
  const pending = () => -(controller.desiredSize ?? 0);
  const stalled = () => (pending() > 0 || !reading) && now() - caughtUp > STALL_MS;
  const unread = () => (reading ? `nothing read for ${Math.round((now() - caughtUp) / 1000)} s` : 'the response was never read');

  const write = (text: string) => {
    if (text === '' || closed || gone.aborted) return;
    if (stalled()) return leave(unread());
    try {
      controller.enqueue(encoder.encode(text));
    } catch {
      leave('write failed');
    }
  };
  return {
    stream,
    gone,
    write,
    async flow() {
      if (pending() <= MAX_PENDING_CHUNKS || gone.aborted) return;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => (leave(unread()), done()), Math.max(0, caughtUp + STALL_MS - now()));
        const done = () => {
          clearTimeout(timer);
          gone.removeEventListener('abort', done);
          onCaughtUp = undefined;
          resolve();
        };
        onCaughtUp = done;
        gone.addEventListener('abort', done);
      });
    },
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
