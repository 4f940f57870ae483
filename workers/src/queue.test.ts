import { describe, expect, it } from 'vitest';
import { OpenAIError } from './errors.js';
import { STUCK_AFTER_MS, TurnQueue } from './queue.js';

const never = new AbortController().signal;

describe('TurnQueue', () => {
  it('gives the turn in arrival order, one holder at a time', async () => {
    const queue = new TurnQueue(3);
    const order: number[] = [];
    const tickets = [0, 1, 2, 3].map((i) => queue.enter());
    const runs = tickets.map(async (ticket, i) => {
      await ticket.ready(never);
      order.push(i);
      expect(queue.state()).toMatchObject({ running: true, queued: 3 - i });
      await new Promise((r) => setTimeout(r, 2));
      ticket.release();
    });
    await Promise.all(runs);
    expect(order).toEqual([0, 1, 2, 3]);
    expect(queue.state()).toMatchObject({ running: false, queued: 0 });
  });

  it('refuses with 429 and Retry-After once maxQueue wait', () => {
    const queue = new TurnQueue(1);
    queue.enter();
    queue.enter();
    let refused: unknown;
    try {
      queue.enter();
    } catch (error) {
      refused = error;
    }
    expect(refused).toBeInstanceOf(OpenAIError);
    expect(refused).toMatchObject({ status: 429, code: 'rate_limit_exceeded', type: 'rate_limit_error' });
    expect(Number((refused as OpenAIError).headers['Retry-After'])).toBeGreaterThanOrEqual(1);
  });

  it('lets a waiter whose signal aborts leave the line, and a released holder hand on once', async () => {
    const queue = new TurnQueue(2);
    const first = queue.enter();
    const leaving = queue.enter();
    const third = queue.enter();
    const abort = new AbortController();
    const left = leaving.ready(abort.signal);
    abort.abort(new Error('gone'));
    await expect(left).rejects.toThrow('gone');
    expect(queue.state().queued).toBe(1);
    first.release();
    first.release(); // a second release must not hand on the third's turn as well
    await third.ready(never);
    expect(queue.state()).toMatchObject({ running: true, queued: 0 });
    queue.enter(); // room again: the one that left no longer counts
  });

  it('reports a holder without progress for STUCK_AFTER_MS as stuck', async () => {
    let now = 0;
    const queue = new TurnQueue(1, () => now);
    const ticket = queue.enter();
    await ticket.ready(never);
    now = STUCK_AFTER_MS - 1;
    ticket.progress();
    now += STUCK_AFTER_MS - 1;
    expect(queue.state()).toMatchObject({ stuck: false, sinceProgressMs: STUCK_AFTER_MS - 1, runningMs: 2 * STUCK_AFTER_MS - 2 });
    now += 1;
    expect(queue.state().stuck).toBe(true);
    ticket.release();
    expect(queue.state()).toMatchObject({ stuck: false, running: false, runningMs: null });
  });
});
