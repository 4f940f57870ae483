import { OpenAIError } from './errors.js';

/** A generation that made no progress (no token) for this long is reported as stuck by /healthz. */
export const STUCK_AFTER_MS = 60_000;

/** One request's place: the turn on the model, or a place in line for it. */
export interface Ticket {
  /** Resolves when this ticket holds the turn; rejects when `signal` aborts first (the ticket then leaves the line). */
  ready(signal: AbortSignal): Promise<void>;
  /** A token was produced: the holder is alive (the stuck watchdog reads this). */
  progress(): void;
  /** Gives the turn to the next in line, or leaves the line. Safe to call twice. */
  release(): void;
}

export interface QueueState {
  running: boolean;
  queued: number;
  maxQueue: number;
  /** How long the running generation has held the turn, and since its last token (null when none runs). */
  runningMs: number | null;
  sinceProgressMs: number | null;
  /** The running generation has produced nothing for STUCK_AFTER_MS. */
  stuck: boolean;
}

interface Place {
  start(): void;
  abort(reason: unknown): void;
}

/**
 * Generations on one model run one at a time (they share its KV cache); the others wait in a FIFO line of
 * at most `maxQueue`. Admission is decided synchronously when a request arrives, before any byte is sent:
 * with the line full it is a 429 with Retry-After.
 */
export class TurnQueue {
  private holder: object | undefined;
  private line: Place[] = [];
  private heldSince = 0;
  private lastProgress = 0;
  /** Mean time a turn was held, for Retry-After. */
  private meanTurnMs = 1000;

  constructor(
    readonly maxQueue: number,
    private readonly now: () => number = Date.now,
  ) {}

  enter(): Ticket {
    if (this.holder && this.line.length >= this.maxQueue) {
      const seconds = Math.min(60, Math.max(1, Math.ceil(((this.line.length + 1) * this.meanTurnMs) / 1000)));
      throw new OpenAIError(
        429,
        'rate_limit_error',
        `The model is busy: one generation runs and ${this.line.length} wait, the most this server queues. Retry in about ${seconds} s.`,
        null,
        'rate_limit_exceeded',
        { 'Retry-After': String(seconds) },
      );
    }
    const self = this;
    const me = {};
    let state: 'waiting' | 'holding' | 'done' = 'waiting';
    let place: Place | undefined;
    const started = new Promise<void>((resolve, reject) => {
      place = {
        start: () => ((state = 'holding'), self.take(me), resolve()),
        abort: (reason) => ((state = 'done'), reject(reason)),
      };
    });
    started.catch(() => {}); // a ticket released before anyone awaited it
    if (this.holder) this.line.push(place!);
    else place!.start();
    return {
      ready(signal) {
        if (state !== 'waiting') return started;
        if (signal.aborted) return self.leave(place!, signal.reason), started;
        const onAbort = () => self.leave(place!, signal.reason);
        signal.addEventListener('abort', onAbort, { once: true });
        return started.finally(() => signal.removeEventListener('abort', onAbort));
      },
      progress: () => {
        if (state === 'holding') this.lastProgress = this.now();
      },
      release: () => {
        if (state === 'holding') this.handOn();
        else if (state === 'waiting') this.leave(place!, new Error('released before its turn'));
        state = 'done';
      },
    };
  }

  state(): QueueState {
    const now = this.now();
    const running = this.holder !== undefined;
    const sinceProgressMs = running ? now - this.lastProgress : null;
    return {
      running,
      queued: this.line.length,
      maxQueue: this.maxQueue,
      runningMs: running ? now - this.heldSince : null,
      sinceProgressMs,
      stuck: sinceProgressMs !== null && sinceProgressMs >= STUCK_AFTER_MS,
    };
  }

  private take(holder: object): void {
    this.holder = holder;
    this.heldSince = this.lastProgress = this.now();
  }

  private handOn(): void {
    this.meanTurnMs = 0.8 * this.meanTurnMs + 0.2 * Math.max(0, this.now() - this.heldSince);
    this.holder = undefined;
    this.line.shift()?.start();
  }

  private leave(place: Place, reason: unknown): void {
    const index = this.line.indexOf(place);
    if (index < 0) return;
    this.line.splice(index, 1);
    place.abort(reason);
  }
}
