import { describe, expect, it } from 'vitest';
import { byteVocab } from '../../../bench/grammar/walk.js';
import { UnsupportedParameterError } from '../errors.js';
import { Random } from '../sampler.js';
import { compileConstraint } from './constraint.js';

const BYTES = byteVocab(Array.from({ length: 256 }, (_, b) => String.fromCharCode(b)));

/** Whether the string schema with `pattern` accepts JSON.stringify(s), byte by byte. */
function matcher(pattern: string): (s: string) => boolean {
  const constraint = compileConstraint({ type: 'json_schema', schema: { type: 'string', pattern } }, BYTES)!;
  return (s) => {
    let state = constraint.start();
    for (const byte of new TextEncoder().encode(JSON.stringify(s))) {
      const next = state.advance(byte);
      if (!next) return false;
      state = next;
    }
    return state.canEnd();
  };
}

const PATTERNS = [
  '^[a-c]+$', 'ab', '^a{2,3}b?$', '^(foo|ba[rz])*$', '\\d{2}-\\d', '^[^abc]{1,3}$', '^.$', '^\\w+\\s\\w+$', 'x$', '^é[ü-ÿ]?$',
  '^(?:a|b)+?c$', '^[\\-\\]a]+$', '^\\x41\\u00e9$', '^[0-9a-f]{4}$', '^"\\\\$', '^(a|)b$', '^\\S\\D\\W$',
];
const ALPHABET = ['a', 'b', 'c', 'x', 'f', 'o', 'r', 'z', '1', '2', '-', ' ', 'é', 'ü', 'ÿ', '"', '\\', '\n', ']', 'A', '日'];

describe('pattern: the same verdict as JavaScript RegExp', () => {
  it.each(PATTERNS)('%s', (pattern) => {
    const accepts = matcher(pattern);
    const reference = new RegExp(pattern, 'u');
    const random = new Random(pattern.length * 977);
    let matched = 0;
    const texts = new Set<string>(['', 'ab', 'abc', 'foo', 'bar', 'foobaz', '12-3', 'aab', 'x', 'é', 'éü', 'a b', 'c', 'ac', 'b', 'Aé', '"\\', 'abbc', ']-a']);
    for (let i = 0; i < 400; i++) {
      let s = '';
      const length = Math.floor(random.next() * 7);
      for (let k = 0; k < length; k++) s += ALPHABET[Math.floor(random.next() * ALPHABET.length)];
      texts.add(s);
    }
    for (const s of texts) {
      expect(accepts(s), JSON.stringify(s)).toBe(reference.test(s));
      if (reference.test(s)) matched++;
    }
    expect(matched).toBeGreaterThan(0);
  });

  it('refuses what is not regular, by name', () => {
    for (const [pattern, feature] of [['(a)\\1', 'backreferences'], ['a(?!b)', 'lookaround'], ['\\bword', 'word boundaries'], ['\\p{L}', 'property'], ['a^b', '"^"']]) {
      expect(() => matcher(pattern!), pattern).toThrow(UnsupportedParameterError);
      expect(() => matcher(pattern!), pattern).toThrow(feature);
    }
    expect(() => matcher('(ab')).toThrow(/missing "\)"/);
    expect(() => matcher('a{3,2}')).toThrow(/m < n/);
  });
});
