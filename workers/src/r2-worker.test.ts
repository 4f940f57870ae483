/// <reference types="@cloudflare/vitest-pool-workers/types" />
import { createExecutionContext, waitOnExecutionContext } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { createWorker, JS_HEAP_BYTES, type Env, type ModelObjects } from './r2-worker.js';

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

describe('a model that cannot fit MEMORY_LIMIT_MB', () => {
  /** The test model as an object in 64 KiB chunks, counting the bytes the Worker reads of it. */
  function countingObjects(read: { bytes: number }): ModelObjects {
    return {
      async get() {
        const file = new Uint8Array(testEnv.TEST_MODEL);
        let offset = 0;
        const body = new ReadableStream<Uint8Array>({
          pull(controller) {
            if (offset === file.length) return controller.close();
            const chunk = file.slice(offset, offset + 65536);
            offset += chunk.length;
            read.bytes += chunk.length;
            controller.enqueue(chunk);
          },
        }, { highWaterMark: 0 }); // nothing read before the Worker asks
        return { size: file.length, body };
      },
    };
  }

  it('is refused with the sizes before its weights are read: by the file size, then by weights + KV cache + scratch', async () => {
    const fileBytes = testEnv.TEST_MODEL.byteLength;
    const load = async (limitBytes: number) => {
      const read = { bytes: 0 };
      const worker = createWorker({ objects: () => countingObjects(read) });
      const workerEnv = { ...testEnv, MODEL_KEY: KEY, MODEL_ID: 'model', RECYCLE_KEY: undefined, MEMORY_LIMIT_MB: String(limitBytes / 2 ** 20) };
      const ctx = createExecutionContext();
      const headers = { authorization: `Bearer ${testEnv.API_KEY}`, 'content-type': 'application/json' };
      const body = JSON.stringify({ model: 'model', prompt: 'Hello', max_tokens: 2 });
      const res = await worker.fetch!(new Request('http://worker/v1/completions', { method: 'POST', headers, body }) as Request<unknown, IncomingRequestCfProperties>, workerEnv, ctx);
      const json = await res.json<{ error?: { code: string; message: string } }>();
      await waitOnExecutionContext(ctx);
      return { status: res.status, error: json.error, read: read.bytes };
    };

    // The file alone does not fit beside the JS heap: refused from the object's size, nothing read.
    const bySize = await load(fileBytes + JS_HEAP_BYTES - 1);
    expect(bySize.status).toBe(503);
    expect(bySize.error).toMatchObject({ code: 'model_unavailable' });
    expect(bySize.error!.message).toMatch(/MB of weights.*MEMORY_LIMIT_MB.*examples\/node-server/);
    expect(bySize.read).toBe(0);

    // The weights fit, their KV cache and scratch do not: refused from the GGUF header, before the weights.
    const byHeader = await load(fileBytes + JS_HEAP_BYTES + 1024);
    expect(byHeader.status).toBe(503);
    expect(byHeader.error!.message).toMatch(/In this Worker \(MEMORY_LIMIT_MB.*KV cache .* for \d+ tokens.*CONTEXT_LENGTH.*examples\/node-server/);
    expect(byHeader.read).toBeLessThan(fileBytes);

    // With room for all of it, the same file loads and answers.
    expect((await load(fileBytes + JS_HEAP_BYTES + 64 * 2 ** 20)).status).toBe(200);
  });
});
