/**
 * Workers run each request in its own I/O context, and a promise continues in the context of the event
 * that settled it. A request that waits for another one (the model's load, its turn on the model) would
 * go on inside that other request and could no longer touch its own response ("Cannot perform I/O on
 * behalf of a different request"). So there it waits by polling with timers of its own, whose callbacks
 * run in its own context. Other runtimes have no such contexts and simply await.
 */
const IN_WORKERS = (globalThis as { navigator?: { userAgent?: string } }).navigator?.userAgent === 'Cloudflare-Workers';

/** How often a waiting request looks: the delay it adds, against the CPU its timers cost while it waits. */
export const POLL_MS = 10;

/** Awaits `promise` and resumes in the caller's own request context. Call it from that context. */
export function inOwnContext<T>(promise: Promise<T>): Promise<T> {
  if (!IN_WORKERS) return promise;
  let outcome: { value: T } | { error: unknown } | undefined;
  promise.then(
    (value) => (outcome = { value }),
    (error: unknown) => (outcome = { error }),
  );
  return new Promise<T>((resolve, reject) => {
    const look = () => {
      if (!outcome) setTimeout(look, POLL_MS);
      else if ('value' in outcome) resolve(outcome.value);
      else reject(outcome.error);
    };
    // The first look is already a timer: the promise cannot have settled synchronously.
    setTimeout(look, 0);
  });
}
