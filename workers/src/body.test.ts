import { describe, expect, it } from 'vitest';
import { MAX_BACKLOG_BYTES, responseBody, STALL_MS } from './body.js';

describe('responseBody', () => {
  it('passes what is written to the reader', async () => {
    const body = responseBody(undefined);
    body.write('a');
    body.write('');
    body.write('b');
    body.close();
    expect(await new Response(body.stream).text()).toBe('ab');
    expect(body.gone.aborted).toBe(false);
  });

  it('counts the client as gone when the stream is cancelled', async () => {
    const body = responseBody(undefined);
    await body.stream.cancel();
    expect(body.gone.aborted).toBe(true);
    expect(String(body.gone.reason)).toContain('cancelled');
    body.write('ignored'); // writing after that must not throw
  });

  it("counts the client as gone when the request's signal aborts", () => {
    const request = new AbortController();
    const body = responseBody(request.signal);
    request.abort();
    expect(body.gone.aborted).toBe(true);
  });

  it('counts a client that reads nothing as gone past MAX_BACKLOG_BYTES', () => {
    const body = responseBody(undefined);
    const kib = 'x'.repeat(1024);
    for (let i = 0; i < MAX_BACKLOG_BYTES / 1024; i++) body.write(kib);
    expect(body.gone.aborted).toBe(false);
    body.write(kib);
    expect(String(body.gone.reason)).toContain('unread');
  });

  it('counts a client as gone once bytes have waited STALL_MS unread', () => {
    let now = 0;
    const body = responseBody(undefined, () => now);
    body.write('x');
    now = STALL_MS + 1;
    body.write('y');
    expect(String(body.gone.reason)).toContain('nothing read');
  });
});
