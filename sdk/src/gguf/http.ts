/** Models over HTTP(S): the fetch and the checks every response gets, with typed errors; the load's abort check. */
import { RecycleGPTError } from '../errors.js';
import type { OpenedSource } from './source.js';

/** GETs `url` (with extra request headers, e.g. Range); a failure to connect is SOURCE_UNREADABLE, an abort ABORTED. */
export async function fetchModel(url: URL, signal: AbortSignal | undefined, headers?: Record<string, string>): Promise<Response> {
  try {
    return await fetch(url, { signal, headers });
  } catch (error) {
    throwIfAborted(signal);
    throw new RecycleGPTError('SOURCE_UNREADABLE', `could not fetch the model from ${url.href}: ${describe(error)}; check the URL and the network`, { cause: error });
  }
}

export function openResponse(response: Response, name: string): OpenedSource {
  if (!response.ok) {
    throw new RecycleGPTError('SOURCE_UNREADABLE', `fetching the model from ${name} failed with HTTP ${response.status} ${response.statusText}`.trimEnd());
  }
  if (response.bodyUsed) throw new RecycleGPTError('SOURCE_UNREADABLE', `the response body of ${name} was already read; pass a fresh Response`);
  if (!response.body) throw new RecycleGPTError('SOURCE_UNREADABLE', `the response from ${name} has no body`);
  return { stream: response.body, size: contentLength(response), name };
}

/** Content-Length is the body's size only when no content coding (gzip, br) sits in between. */
function contentLength(response: Response): number | undefined {
  const encoding = response.headers.get('content-encoding');
  if (encoding && encoding !== 'identity') return undefined;
  const header = response.headers.get('content-length');
  if (header === null || !/^\d+$/.test(header)) return undefined;
  const size = Number(header);
  return Number.isSafeInteger(size) ? size : undefined;
}

export function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new RecycleGPTError('ABORTED', 'loading the model was aborted', { cause: signal.reason });
}
