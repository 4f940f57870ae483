import { describe, expect, it } from 'vitest';
import { MAX_PENDING_CHUNKS, responseBody, STALL_MS } from './body.js';

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

  it('makes the writer wait while more than MAX_PENDING_CHUNKS are unread, until the reader catches up', async () => {
    const body = responseBody(undefined);
    const reader = body.stream.getReader();
    for (let i = 0; i <= MAX_PENDING_CHUNKS; i++) body.write(String(i));
    let flowed = false;
    const flowing = body.flow().then(() => (flowed = true));
    await new Promise((r) => setTimeout(r, 5));
    expect(flowed).toBe(false);
    for (let i = 0; i <= MAX_PENDING_CHUNKS; i++) await reader.read();
    // The reader now finds nothing: that is the pull that lets the writer go on.
    void reader.read();
    await flowing;
    expect(body.gone.aborted).toBe(false);
  });

  it('lets a waiting writer go on at once when the client leaves', async () => {
    const body = responseBody(undefined);
    for (let i = 0; i <= MAX_PENDING_CHUNKS; i++) body.write(String(i));
    const flowing = body.flow();
    await body.stream.cancel();
    await flowing;
    expect(body.gone.aborted).toBe(true);
  });

  it('counts a client as gone once bytes have waited STALL_MS unread', async () => {
    let now = 0;
    const body = responseBody(undefined, () => now);
    const reader = body.stream.getReader();
    body.write('x');
    await reader.read();
    void reader.read(); // caught up at time 0
    await new Promise((r) => setTimeout(r, 1));
    body.write('y');
    now = STALL_MS;
    body.write('z');
    expect(body.gone.aborted).toBe(false);
    now = STALL_MS + 1;
    body.write('w');
    expect(String(body.gone.reason)).toContain('nothing read for 5 s');
  });

  it('counts a body the runtime never starts to read as gone after STALL_MS', () => {
    let now = 0;
    const body = responseBody(undefined, () => now);
    body.write('x');
    now = STALL_MS + 1;
    body.write('y');
    expect(String(body.gone.reason)).toContain('never read');
  });
});
