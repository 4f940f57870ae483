import { describe, expect, it } from 'vitest';
import { byteVocab } from '../../../bench/grammar/walk.js';
import { Random } from '../sampler.js';
import { compileConstraint, type JsonSchema } from './constraint.js';

/** Every byte is a token: acceptance of a whole text, byte by byte. */
const BYTES = byteVocab(Array.from({ length: 256 }, (_, b) => String.fromCharCode(b)));

function acceptor(schema: JsonSchema): (text: string) => boolean {
  const constraint = compileConstraint({ type: 'json_schema', schema }, BYTES)!;
  return (text) => {
    let state = constraint.start();
    for (const byte of new TextEncoder().encode(text)) {
      const next = state.advance(byte);
      if (!next) return false;
      state = next;
    }
    return state.canEnd();
  };
}

/** Texts around the interesting values: integers, short decimals, and forms the grammar never writes. */
function candidates(points: number[], seed: number): string[] {
  const random = new Random(seed);
  const out = new Set<string>(['0', '-0', '00', '01', '1.', '.5', '1e3', '-', '0.0', '-0.0', '1.50', '+1', ' 1']);
  for (const p of points) {
    for (const delta of [-1, -0.5, -0.1, -0.01, -0.001, -1e-4, 0, 1e-4, 0.001, 0.01, 0.1, 0.5, 1]) {
      const v = p + delta;
      for (const digits of [0, 1, 2, 3, 4, 6]) out.add(v.toFixed(digits));
    }
  }
  for (let i = 0; i < 300; i++) {
    const magnitude = 10 ** Math.floor(random.next() * 7 - 2);
    out.add(((random.next() - 0.5) * magnitude).toFixed(Math.floor(random.next() * 5)));
  }
  return [...out];
}

/** The form the grammar writes for bounded numbers: no exponent, no leading zeros, no "-0". */
const CANONICAL = /^(-?(0|[1-9][0-9]*)(\.[0-9]+)?)$/;
const significantDigits = (text: string) => text.replace(/^-?0*\.?0*/, '').replace('.', '').length;

const CASES: Array<{ type: 'number' | 'integer'; minimum?: number; maximum?: number; exclusiveMinimum?: number; exclusiveMaximum?: number }> = [
  { type: 'number', minimum: 0, maximum: 1 },
  { type: 'number', exclusiveMinimum: 0, exclusiveMaximum: 1 },
  { type: 'number', minimum: -2.5, exclusiveMaximum: 2.5 },
  { type: 'number', exclusiveMinimum: 0.001, exclusiveMaximum: 0.002 },
  { type: 'number', exclusiveMinimum: -273.15, maximum: 1e4 },
  { type: 'number', minimum: 1.25 },
  { type: 'number', exclusiveMaximum: -0.5 },
  { type: 'number', minimum: 3, maximum: 3 },
  { type: 'number', minimum: -10.75, maximum: -10.5 },
  { type: 'integer', minimum: -15, maximum: 130 },
  { type: 'integer', exclusiveMinimum: 2.5, exclusiveMaximum: 99 },
  { type: 'integer', minimum: 1000 },
  { type: 'integer', maximum: -7 },
];

describe('numbers within bounds', () => {
  it.each(CASES.map((c) => [JSON.stringify(c), c] as const))('%s: accepted exactly when in range (in the grammar\'s form)', (_name, bounds) => {
    const accepts = acceptor(bounds);
    const points = [bounds.minimum, bounds.maximum, bounds.exclusiveMinimum, bounds.exclusiveMaximum].filter((v): v is number => v !== undefined);
    const mid = points.length === 2 ? [(points[0]! + points[1]!) / 2, points[0]! * 0.75 + points[1]! * 0.25] : [];
    let inRange = 0;
    for (const text of candidates([0, ...points, ...mid], points.length * 31 + 7)) {
      const value = Number(text);
      const within =
        CANONICAL.test(text) &&
        text !== '-0' &&
        !/^-0(\.0*)?$/.test(text) &&
        (bounds.type === 'number' || !text.includes('.')) &&
        (bounds.minimum === undefined || value >= bounds.minimum) &&
        (bounds.maximum === undefined || value <= bounds.maximum) &&
        (bounds.exclusiveMinimum === undefined || value > bounds.exclusiveMinimum) &&
        (bounds.exclusiveMaximum === undefined || value < bounds.exclusiveMaximum);
      // Sound always; complete for texts of the grammar's form with few enough digits.
      if (accepts(text)) expect(within, text).toBe(true);
      else if (within && significantDigits(text) <= 6 && Math.abs(value) < 1e8) expect.fail(`${text} is in range but refused`);
      if (within) inRange++;
    }
    expect(inRange).toBeGreaterThan(5);
  });

  it('a range with no number in it is refused as matching nothing', () => {
    expect(() => acceptor({ type: 'integer', minimum: 1.2, maximum: 1.8 })).toThrow(/matches no string/);
    expect(() => acceptor({ type: 'number', exclusiveMinimum: 1, exclusiveMaximum: 1 })).toThrow(/matches no string/);
  });
});
