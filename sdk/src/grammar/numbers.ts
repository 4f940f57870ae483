/**
 * JSON numbers within bounds as regular languages over their decimal text: canonical integers (no leading
 * zeros, no "-0") and, for `number`, an optional fraction. Every emitted number has at most 15 significant
 * digits, so JSON.parse reads it as a distinct double on the right side of any bound (a bound's own shortest
 * text is the only text that parses to it).
 */
import { alt, byteRanges, EMPTY, literal, NOTHING, optional, repeat, seq, type Expr } from './ir.js';

const DIGIT = byteRanges([[0x30, 0x39]]);
const digitRange = (lo: number, hi: number): Expr => (lo > hi ? NOTHING : byteRanges([[0x30 + lo, 0x30 + hi]]));
const digits = (min: number, max: number): Expr => repeat(DIGIT, min, max);

/** Integers and integer parts have at most this many digits unless a bound needs more. */
const MAX_DIGITS = 15;
/** Without an upper bound, integer parts of a `number` stop at 9 digits so that 6 fraction digits still fit in 15. */
const UNBOUNDED_INT_DIGITS = 9;
const CAP = 10n ** BigInt(MAX_DIGITS) - 1n;

export interface Bounds {
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
}

/** `integer` within the bounds; NOTHING when none fits. */
export function integerInRange(b: Bounds): Expr {
  let lo = -CAP;
  let hi = CAP;
  if (b.minimum !== undefined) lo = max(lo, ceil(b.minimum));
  if (b.exclusiveMinimum !== undefined) lo = max(lo, floor(b.exclusiveMinimum) + 1n);
  if (b.maximum !== undefined) hi = min(hi, floor(b.maximum));
  if (b.exclusiveMaximum !== undefined) hi = min(hi, ceil(b.exclusiveMaximum) - 1n);
  if (lo > hi) return NOTHING;
  return alt(
    ...(hi >= 0n ? [uintRange(max(lo, 0n), hi)] : []),
    ...(lo < 0n ? [seq(literal('-'), uintRange(max(-hi, 1n), -lo))] : []),
  );
}

/** `number` without bounds: integer part, fraction and exponent, each of limited length. */
export const UNBOUNDED_NUMBER: Expr = seq(
  optional(literal('-')),
  uintRange(0n, CAP),
  optional(seq(literal('.'), digits(1, MAX_DIGITS))),
  optional(seq(byteRanges([[0x45, 0x45], [0x65, 0x65]]), optional(byteRanges([[0x2b, 0x2b], [0x2d, 0x2d]])), digits(1, 2))),
);

/** `number` within the bounds (no exponent); NOTHING when none fits. */
export function numberInRange(b: Bounds): Expr {
  const lower = tighter(b.minimum, b.exclusiveMinimum, 1);
  const upper = tighter(b.maximum, b.exclusiveMaximum, -1);
  if (!lower && !upper) return UNBOUNDED_NUMBER;
  if (lower && upper && (lower.value > upper.value || (lower.value === upper.value && !(lower.inclusive && upper.inclusive)))) return NOTHING;
  const magnitude = Math.max(Math.abs(lower?.value ?? 0), Math.abs(upper?.value ?? 0));
  const intDigits = Math.max(decimal(Math.floor(magnitude)).int.toString().length, lower && upper ? 1 : UNBOUNDED_INT_DIGITS);
  const boundFrac = Math.max(lower ? decimal(lower.value).frac.length : 0, upper ? decimal(upper.value).frac.length : 0);
  const fracCap = Math.max(boundFrac, MAX_DIGITS - intDigits, 1);
  const intCap = 10n ** BigInt(Math.max(intDigits, 1)) - 1n;
  const ranges: Expr[] = [];
  // Non-negative values x in [max(lo, 0), hi].
  const loNonNeg = !lower || lower.value < 0 ? { d: ZERO, incl: true } : { d: decimal(lower.value), incl: lower.inclusive };
  if (!upper || upper.value > 0 || (upper.value === 0 && upper.inclusive)) {
    const hiD = upper ? { d: decimal(upper.value), incl: upper.inclusive } : undefined;
    ranges.push(nonNegative(loNonNeg, hiD, intCap, fracCap));
  }
  // Negative values: "-" then x = -v in (max(-hi, 0), -lo].
  if (!lower || lower.value < 0) {
    const xLo = !upper || upper.value >= 0 ? { d: ZERO, incl: false } : { d: decimal(-upper.value), incl: upper.inclusive };
    const xHi = lower ? { d: decimal(-lower.value), incl: lower.inclusive } : undefined;
    ranges.push(seq(literal('-'), nonNegative(xLo, xHi, intCap, fracCap)));
  }
  return alt(...ranges);
}

function tighter(inclusive: number | undefined, exclusive: number | undefined, sign: 1 | -1): { value: number; inclusive: boolean } | undefined {
  if (inclusive === undefined && exclusive === undefined) return undefined;
  if (exclusive === undefined) return { value: inclusive!, inclusive: true };
  if (inclusive === undefined) return { value: exclusive, inclusive: false };
  return sign * (exclusive - inclusive) >= 0 ? { value: exclusive, inclusive: false } : { value: inclusive, inclusive: true };
}

// ── Decimal text of a bound ──

interface Decimal {
  int: bigint;
  /** Fraction digits, no trailing zeros. */
  frac: string;
}

const ZERO: Decimal = { int: 0n, frac: '' };

/** |x| as exact decimal digits of its shortest round-trip text. */
function decimal(x: number): Decimal {
  const [mantissa, exp = '0'] = Math.abs(x).toString().split('e');
  const [whole, frac = ''] = mantissa!.split('.');
  let all = whole! + frac;
  let point = whole!.length + Number(exp);
  if (point < 0) (all = '0'.repeat(-point) + all), (point = 0);
  if (point > all.length) all += '0'.repeat(point - all.length);
  return { int: BigInt(all.slice(0, point) || '0'), frac: all.slice(point).replace(/0+$/, '') };
}

function ceil(x: number): bigint {
  return BigInt(Math.ceil(Math.max(-1e16, Math.min(1e16, x))));
}
function floor(x: number): bigint {
  return BigInt(Math.floor(Math.max(-1e16, Math.min(1e16, x))));
}
function max(a: bigint, b: bigint): bigint {
  return a > b ? a : b;
}
function min(a: bigint, b: bigint): bigint {
  return a < b ? a : b;
}

// ── Integers ──

/** Canonical decimal text of every integer in [lo, hi], 0 ≤ lo. */
function uintRange(lo: bigint, hi: bigint): Expr {
  if (lo > hi) return NOTHING;
  const parts: Expr[] = [];
  if (lo === 0n) {
    parts.push(literal('0'));
    lo = 1n;
  }
  for (let len = lo.toString().length; len <= hi.toString().length; len++) {
    const a = max(lo, 10n ** BigInt(len - 1));
    const b = min(hi, 10n ** BigInt(len) - 1n);
    if (a <= b) parts.push(sameLength(a.toString(), b.toString()));
  }
  return alt(...parts);
}

/** Digit strings of one length between a and b inclusive. */
function sameLength(a: string, b: string): Expr {
  if (a.length === 0) return EMPTY;
  const a0 = Number(a[0]);
  const b0 = Number(b[0]);
  const rest = a.length - 1;
  if (a0 === b0) return seq(digitRange(a0, a0), sameLength(a.slice(1), b.slice(1)));
  if (/^0*$/.test(a.slice(1)) && /^9*$/.test(b.slice(1))) return seq(digitRange(a0, b0), digits(rest, rest));
  return alt(
    seq(digitRange(a0, a0), sameLength(a.slice(1), '9'.repeat(rest))),
    seq(digitRange(a0 + 1, b0 - 1), digits(rest, rest)),
    seq(digitRange(b0, b0), sameLength('0'.repeat(rest), b.slice(1))),
  );
}

// ── Non-negative decimals ──

interface Bound {
  d: Decimal;
  incl: boolean;
}

/** Text "I" or "I.F" of every x with lo ⋚ x ⋚ hi (hi absent: integer part up to intCap), F at most fracCap digits. */
function nonNegative(lo: Bound, hi: Bound | undefined, intCap: bigint, fracCap: number): Expr {
  const iLo = lo.d.int;
  const iHi = hi ? hi.d.int : intCap;
  if (iLo > iHi) return NOTHING;
  const anyFraction = optional(seq(literal('.'), digits(1, fracCap)));
  if (hi && iLo === iHi) return seq(uintRange(iLo, iLo), fraction(between(lo.d.frac, lo.incl, hi.d.frac, hi.incl, fracCap)));
  return alt(
    seq(uintRange(iLo, iLo), fraction(atLeast(lo.d.frac, lo.incl, fracCap))),
    seq(uintRange(iLo + 1n, hi ? iHi - 1n : iHi), anyFraction),
    ...(hi ? [seq(uintRange(iHi, iHi), fraction(atMost(hi.d.frac, hi.incl, fracCap)))] : []),
  );
}

/** A set of fraction digit strings D (possibly empty) → "" where D may be empty, or "." D where D is not. */
interface Fraction {
  empty: boolean;
  nonEmpty: Expr;
}

function fraction(f: Fraction): Expr {
  return alt(...(f.empty ? [EMPTY] : []), seq(literal('.'), f.nonEmpty));
}

// Digit strings D of length ≤ cap compared as 0.D against 0.f (f without trailing zeros).

function atLeast(f: string, incl: boolean, cap: number): Fraction {
  if (f === '') {
    if (incl) return { empty: true, nonEmpty: digits(1, cap) };
    // Some digit must be non-zero.
    return { empty: false, nonEmpty: alt(...range(cap).map((p) => seq(repeat(literal('0'), p, p), digitRange(1, 9), digits(0, cap - p - 1)))) };
  }
  if (cap === 0) return { empty: false, nonEmpty: NOTHING };
  const f0 = Number(f[0]);
  const tail = atLeast(f.slice(1), incl, cap - 1);
  return { empty: false, nonEmpty: alt(seq(digitRange(f0 + 1, 9), digits(0, cap - 1)), seq(digitRange(f0, f0), withEmpty(tail))) };
}

function atMost(f: string, incl: boolean, cap: number): Fraction {
  if (f === '') return incl ? { empty: true, nonEmpty: repeat(literal('0'), 1, cap) } : { empty: false, nonEmpty: NOTHING };
  if (cap === 0) return { empty: true, nonEmpty: NOTHING };
  const f0 = Number(f[0]);
  const tail = atMost(f.slice(1), incl, cap - 1);
  return { empty: true, nonEmpty: alt(seq(digitRange(0, f0 - 1), digits(0, cap - 1)), seq(digitRange(f0, f0), withEmpty(tail))) };
}

/** 0.a ⋚ 0.D ⋚ 0.b with 0.a ≤ 0.b. */
function between(a: string, aIncl: boolean, b: string, bIncl: boolean, cap: number): Fraction {
  if (a === '') {
    const upper = atMost(b, bIncl, cap);
    if (aIncl) return upper;
    // Exclusive at 0: drop the all-zero strings, i.e. intersect with "some digit is non-zero".
    if (b === '') return { empty: false, nonEmpty: NOTHING };
    return { empty: false, nonEmpty: nonZeroAtMost(b, bIncl, cap) };
  }
  if (cap === 0) return { empty: false, nonEmpty: NOTHING };
  const a0 = Number(a[0]);
  const b0 = Number(b[0] ?? '0');
  if (a0 === b0) {
    const tail = between(a.slice(1), aIncl, b.slice(1), bIncl, cap - 1);
    return { empty: false, nonEmpty: seq(digitRange(a0, a0), withEmpty(tail)) };
  }
  return {
    empty: false,
    nonEmpty: alt(
      seq(digitRange(a0, a0), withEmpty(atLeast(a.slice(1), aIncl, cap - 1))),
      seq(digitRange(a0 + 1, b0 - 1), digits(0, cap - 1)),
      seq(digitRange(b0, b0), withEmpty(atMost(b.slice(1), bIncl, cap - 1))),
    ),
  };
}

/** Digit strings with a non-zero digit and 0.D ⋚ 0.b (b non-empty). */
function nonZeroAtMost(b: string, bIncl: boolean, cap: number): Expr {
  if (cap === 0) return NOTHING;
  const b0 = Number(b[0]);
  const rest = b.slice(1);
  return alt(
    // A leading zero (b0 > 0, or b0 = 0 and the rest decides), then still needing a non-zero digit.
    ...(b0 > 0 ? [seq(literal('0'), atLeast('', false, cap - 1).nonEmpty)] : rest ? [seq(literal('0'), nonZeroAtMost(rest, bIncl, cap - 1))] : []),
    seq(digitRange(1, b0 - 1), digits(0, cap - 1)),
    ...(b0 > 0 ? [seq(digitRange(b0, b0), withEmpty(atMost(rest, bIncl, cap - 1)))] : []),
  );
}

function withEmpty(f: Fraction): Expr {
  return f.empty ? alt(EMPTY, f.nonEmpty) : f.nonEmpty;
}

function range(n: number): number[] {
  return Array.from({ length: Math.max(0, n) }, (_, i) => i);
}
