import { InvalidArgumentError } from './errors.js';

/**
 * Stop sequences on streamed text: text is released only once it cannot be the start of a stop
 * sequence, and nothing from a stop sequence on is ever released.
 */
export class StopMatcher {
  private held = '';
  stopped = false;

  constructor(private readonly sequences: string[]) {
    if (!Array.isArray(sequences)) throw new InvalidArgumentError('stop must be an array of strings');
    for (const s of sequences) {
      if (typeof s !== 'string' || s.length === 0) throw new InvalidArgumentError('stop sequences must be non-empty strings');
    }
  }

  /** Adds text; returns what can be released now and whether a stop sequence was reached. */
  push(text: string): { text: string; stopped: boolean } {
    if (this.stopped) return { text: '', stopped: true };
    const all = this.held + text;
    let cut = -1;
    for (const s of this.sequences) {
      const at = all.indexOf(s);
      if (at !== -1 && (cut === -1 || at < cut)) cut = at;
    }
    if (cut !== -1) {
      this.stopped = true;
      this.held = '';
      return { text: all.slice(0, cut), stopped: true };
    }
    const keep = this.longestStopPrefixSuffix(all);
    this.held = all.slice(all.length - keep);
    return { text: all.slice(0, all.length - keep), stopped: false };
  }

  /** The end of the stream: what is held back is plain text after all. */
  flush(text = ''): string {
    const out = this.push(text);
    if (out.stopped) return out.text;
    const rest = this.held;
    this.held = '';
    return out.text + rest;
  }

  private longestStopPrefixSuffix(text: string): number {
    let best = 0;
    for (const s of this.sequences) {
      for (let n = Math.min(s.length - 1, text.length); n > best; n--) {
        if (text.endsWith(s.slice(0, n))) {
          best = n;
          break;
        }
      }
    }
    return best;
  }
}
