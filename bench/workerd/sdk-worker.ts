/// <reference types="@cloudflare/workers-types" />
/**
 * The benchmark's Worker (sdk-handler.ts), bundled by miniflare.ts: models come from the MODELS bucket
 * (local R2 under Miniflare) or, under a bare workerd config, from a disk service bound as MODEL_FILES.
 */
import relaxed from '../../sdk/wasm/recyclegpt-relaxed.wasm';
import simd128 from '../../sdk/wasm/recyclegpt.wasm';
import { makeSdkHandler } from './sdk-handler.js';

interface Env {
  MODELS?: R2Bucket;
  MODEL_FILES?: Fetcher;
}

let handle: ((request: Request) => Promise<Response>) | undefined;

export default {
  fetch(request, env) {
    handle ??= makeSdkHandler({ relaxed, simd128 }, async (key) => {
      if (env.MODELS) return (await env.MODELS.get(key))?.body;
      const response = await env.MODEL_FILES!.fetch(`http://files/${encodeURIComponent(key)}`);
      return response.ok ? response.body ?? undefined : undefined;
    });
    return handle(request);
  },
} satisfies ExportedHandler<Env>;
