/// <reference types="@cloudflare/vitest-pool-workers/types" />
import { createExecutionContext, waitOnExecutionContext } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { createWorker, type Env, type ModelObjects } from './r2-worker.js';

/**
 * Faults while the model streams from R2, injected by wrapping the bucket: the object's stream fails midway (as
 * when R2 or the network drops the connection). The truncated object is tested against wrangler dev, over real
 * sockets, in workers/test/resilience.e2e.test.ts.
 */
const testEnv = env as unknown as Env & { TEST_MODEL: ArrayBuffer; API_KEY: string };
const KEY = 'faults/model.gguf';

/** The bucket, with each object's stream failing after `failAfter` bytes while `failing` says so. */
function flakyBucket(bucket: R2Bucket, state: { failing: boolean; failAfter: number }): ModelObjects {
  return {
    async get(key) {
      const object = await bucket.get(key);
      if (!object || !state.failing) return object;
      const reader = object.body.getReader();
      let passed = 0;
      const body = new ReadableStream<Uint8Array>({
        async pull(controller) {
          const { value, done } = await reader.read();
          if (done) return controller.close();
          if (passed + value.length > state.failAfter) {
            await reader.cancel();
            return controller.error(new Error('Network connection lost.'));
          }
          passed += value.length;
          controller.enqueue(value);
        },
        cancel: (reason) => reader.cancel(reason),
      });
      return { size: object.size, body };
    },
  };
}

describe('an R2 object whose stream fails midway', () => {
  it('answers the waiting requests 503 with the reason, and the next request loads again', async () => {
    await testEnv.MODELS.put(KEY, testEnv.TEST_MODEL);
    const state = { failing: true, failAfter: testEnv.TEST_MODEL.byteLength / 2 };
    const worker = createWorker({ objects: (e) => flakyBucket(e.MODELS, state) });
    const workerEnv = { ...testEnv, MODEL_KEY: KEY, MODEL_ID: 'model', RECYCLE_KEY: undefined };
    const call = async (path: string, body?: object) => {
      const ctx = createExecutionContext();
      const headers = { authorization: `Bearer ${testEnv.API_KEY}`, 'content-type': 'application/json' };
      const init = body ? { method: 'POST', headers, body: JSON.stringify(body) } : { headers };
      const res = await worker.fetch!(new Request(`http://worker${path}`, init) as Request<unknown, IncomingRequestCfProperties>, workerEnv, ctx);
      const json = await res.json<{ error?: { code: string; message: string }; status?: string; choices?: unknown[] }>();
      await waitOnExecutionContext(ctx);
      return { status: res.status, json };
    };
    const complete = () => call('/v1/completions', { model: 'model', prompt: 'Hello', max_tokens: 2 });

    // Three requests wait for the one load, which fails halfway through the weights.
    const failed = await Promise.all([complete(), complete(), complete()]);
    for (const { status, json } of failed) {
      expect(status).toBe(503);
      expect(json.error).toMatchObject({ code: 'model_unavailable' });
      expect(json.error!.message).toContain('Network connection lost.');
    }
    const health = await call('/healthz');
    expect(health.status).toBe(503);
    expect(health.json).toMatchObject({ status: 'model_unavailable', models: [{ state: 'failed' }] });

    // The failed load is not kept: once the stream is sound, the next request loads the model and answers.
    state.failing = false;
    const recovered = await complete();
    expect(recovered.status).toBe(200);
    expect(recovered.json.choices).toHaveLength(1);
    expect((await call('/healthz')).json).toMatchObject({ status: 'ok', models: [{ state: 'ready' }] });
  });
});
