/**
 * The grammar every input format compiles to: named rules whose bodies are byte-level regular expressions
 * with references to other rules. JSON Schema, GBNF and regex patterns all build this; the automaton
 * (automaton.ts) turns it into one DFA per recursive rule.
 */

/** One byte out of a set (a 256-bit bitset), a sequence, a choice, a bounded repetition, or another rule. */
export type Expr =
  | { readonly kind: 'byte'; readonly set: Uint32Array }
  | { readonly kind: 'seq'; readonly items: readonly Expr[] }
  | { readonly kind: 'alt'; readonly items: readonly Expr[] }
  | { readonly kind: 'repeat'; readonly item: Expr; readonly min: number; readonly max: number }
  | { readonly kind: 'ref'; readonly rule: string };

export interface Grammar {
  readonly rules: ReadonlyMap<string, Expr>;
  readonly root: string;
  /**
   * Rules kept as calls even where they could be inlined, so that their masks are computed once however many
   * places use them. Worth it for rules whose end is plain in every context, such as a quoted string.
   */
  readonly shared?: ReadonlySet<string>;
}

/** The empty string. */
export const EMPTY: Expr = { kind: 'seq', items: [] };
/** No string at all (a choice of nothing). */
export const NOTHING: Expr = { kind: 'alt', items: [] };

export function seq(...items: Expr[]): Expr {
  const flat = items.flatMap((e) => (e.kind === 'seq' ? e.items : [e]));
  if (flat.some((e) => e === NOTHING)) return NOTHING;
  return flat.length === 1 ? flat[0]! : { kind: 'seq', items: flat };
}

export function alt(...items: Expr[]): Expr {
  const flat = items.flatMap((e) => (e.kind === 'alt' ? e.items : [e]));
  return flat.length === 1 ? flat[0]! : { kind: 'alt', items: flat };
}

export function repeat(item: Expr, min: number, max = Infinity): Expr {
  if (max < min || (item === NOTHING && min > 0)) return NOTHING;
  if (max === 0 || item === NOTHING) return EMPTY;
  if (min === 1 && max === 1) return item;
  return { kind: 'repeat', item, min, max };
}

export const optional = (item: Expr): Expr => repeat(item, 0, 1);

export function ref(rule: string): Expr {
  return { kind: 'ref', rule };
}

/** One byte in any of the inclusive ranges. */
export function byteRanges(ranges: ReadonlyArray<readonly [number, number]>): Expr {
  const set = new Uint32Array(8);
  for (const [lo, hi] of ranges) for (let b = lo; b <= hi; b++) set[b >>> 5] |= 1 << (b & 31);
  return set.every((w) => w === 0) ? NOTHING : { kind: 'byte', set };
}

const utf8 = new TextEncoder();

/** The UTF-8 bytes of `text`, in order. */
export function literal(text: string | Uint8Array): Expr {
  const bytes = typeof text === 'string' ? utf8.encode(text) : text;
  return seq(...Array.from(bytes, (b) => byteRanges([[b, b]])));
}

/** A sorted, merged list of inclusive code point ranges. */
export type CodePointRanges = Array<[number, number]>;

export const MAX_CODE_POINT = 0x10ffff;

export function normalizeRanges(ranges: CodePointRanges): CodePointRanges {
  const sorted = ranges.filter(([lo, hi]) => lo <= hi).sort((a, b) => a[0] - b[0]);
  const out: CodePointRanges = [];
  for (const [lo, hi] of sorted) {
    const last = out[out.length - 1];
    if (last && lo <= last[1] + 1) last[1] = Math.max(last[1], hi);
    else out.push([lo, hi]);
  }
  return out;
}

export function complementRanges(ranges: CodePointRanges): CodePointRanges {
  const out: CodePointRanges = [];
  let next = 0;
  for (const [lo, hi] of normalizeRanges(ranges)) {
    if (lo > next) out.push([next, lo - 1]);
    next = hi + 1;
  }
  if (next <= MAX_CODE_POINT) out.push([next, MAX_CODE_POINT]);
  return out;
}

/**
 * One character whose code point is in `ranges`, as its UTF-8 bytes: a choice of byte-range sequences, so that
 * a token holding part of a character stops mid-sequence and the rest must follow. Surrogates are left out
 * (UTF-8 cannot encode them).
 */
export function codePoints(ranges: CodePointRanges): Expr {
  const options: Expr[] = [];
  for (const [lo, hi] of normalizeRanges(ranges)) {
    for (const piece of splitRange(lo, hi)) options.push(seq(...piece.map(([a, b]) => byteRanges([[a, b]]))));
  }
  return alt(...options);
}

/** Byte-range sequences that together encode exactly the code points lo..hi. */
function splitRange(lo: number, hi: number): Array<Array<[number, number]>> {
  // Cut at the surrogates and at each encoded length's limit, then where continuation bytes wrap.
  for (const [a, b] of [[0xd800, 0xdfff], [0, 0x7f], [0x80, 0x7ff], [0x800, 0xffff], [0x10000, MAX_CODE_POINT]] as const) {
    if (a === 0xd800) {
      if (lo <= b && hi >= a) return [...(lo < a ? splitRange(lo, a - 1) : []), ...(hi > b ? splitRange(b + 1, hi) : [])];
      continue;
    }
    if (lo < a && hi >= a) return [...splitRange(lo, a - 1), ...splitRange(a, hi)];
    if (lo <= b && hi > b) return [...splitRange(lo, b), ...splitRange(b + 1, hi)];
  }
  const length = lo <= 0x7f ? 1 : lo <= 0x7ff ? 2 : lo <= 0xffff ? 3 : 4;
  for (let i = 1; i < length; i++) {
    const m = (1 << (6 * i)) - 1;
    if ((lo & ~m) !== (hi & ~m)) {
      if ((lo & m) !== 0) return [...splitRange(lo, lo | m), ...splitRange((lo | m) + 1, hi)];
      if ((hi & m) !== m) return [...splitRange(lo, (hi & ~m) - 1), ...splitRange(hi & ~m, hi)];
    }
  }
  const a = encode(lo);
  const b = encode(hi);
  return [a.map((byte, i) => [byte, b[i]!] as [number, number])];
}

function encode(cp: number): number[] {
  if (cp <= 0x7f) return [cp];
  if (cp <= 0x7ff) return [0xc0 | (cp >> 6), 0x80 | (cp & 63)];
  if (cp <= 0xffff) return [0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 63), 0x80 | (cp & 63)];
  return [0xf0 | (cp >> 18), 0x80 | ((cp >> 12) & 63), 0x80 | ((cp >> 6) & 63), 0x80 | (cp & 63)];
}
