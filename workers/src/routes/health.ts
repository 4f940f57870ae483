import { Hono } from 'hono';
import type { ModelProvider } from '../provider.js';
import type { TurnQueue } from '../queue.js';

/**
 * GET /healthz, no key needed: for each model whether it is loaded, how many generations run and wait,
 * and whether the running one is stuck. 503 when a model is stuck or its last load failed.
 */
export function healthRoutes(models: ModelProvider, queue: (id: string) => TurnQueue): Hono {
  return new Hono().get('/healthz', (c) => {
    const report = models.list().map(({ id }) => {
      const q = queue(id).state();
      return {
        id,
        ...(models.state?.(id) ?? { state: 'unknown' }),
        running: q.running ? 1 : 0,
        queued: q.queued,
        max_queue: q.maxQueue,
        running_ms: q.runningMs,
        since_last_token_ms: q.sinceProgressMs,
        stuck: q.stuck,
      };
    });
    const stuck = report.some((m) => m.stuck);
    const failed = report.some((m) => m.state === 'failed');
    return c.json({ status: stuck ? 'stuck' : failed ? 'model_unavailable' : 'ok', models: report }, stuck || failed ? 503 : 200);
  });
}
