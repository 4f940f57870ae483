import { HttpError } from './errors.js';

/** Counts generations in flight; past the limit new ones are refused with 429 instead of queueing without end. */
export class InFlight {
  private count = 0;
  constructor(private readonly max = Number.POSITIVE_INFINITY) {}

  /** Takes a slot; the returned function gives it back (safe to call twice). */
  enter(): () => void {
    if (this.count >= this.max) {
      throw new HttpError(429, 'rate_limit_error', `This server runs at most ${this.max} generations at a time; retry shortly.`, null, 'rate_limit_exceeded');
    }
    this.count++;
    let released = false;
    return () => {
      if (!released) this.count--;
      released = true;
    };
  }
}
