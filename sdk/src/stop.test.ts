import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from './errors.js';
import { StopMatcher } from './stop.js';

function run(sequences: string[], pieces: string[]) {
  const m = new StopMatcher(sequences);
  const released: string[] = [];
  for (const p of pieces) {
    const r = m.push(p);
    released.push(r.text);
    if (r.stopped) return { released, stopped: true, tail: '' };
  }
  return { released, stopped: false, tail: m.flush() };
}

describe('StopMatcher', () => {
  it('passes text through when there are no stop sequences', () => {
    expect(run([], ['a', 'b'])).toEqual({ released: ['a', 'b'], stopped: false, tail: '' });
  });

  it('cuts at a stop sequence split across pieces and releases nothing after it', () => {
    const r = run(['\n\nUser:'], ['Hi', ' there\n', '\nUs', 'er: more']);
    expect(r.stopped).toBe(true);
    expect(r.released.join('')).toBe('Hi there');
    expect(r.released[1]).toBe(' there'); // the newline is held: it may start the stop sequence
  });

  it('releases held text that turned out not to be a stop sequence', () => {
    const r = run(['###'], ['a#', '#', 'b', 'c##']);
    expect(r.released).toEqual(['a', '', '##b', 'c']);
    expect(r.tail).toBe('##');
  });

  it('stops at the earliest of several sequences', () => {
    const r = run(['END', 'STOP'], ['xx STOP yy END']);
    expect(r.released.join('')).toBe('xx ');
  });

  it('refuses empty stop sequences', () => {
    expect(() => new StopMatcher([''])).toThrow(InvalidArgumentError);
  });
});
