/**
 * JSON Schema (the subset OpenAI's structured outputs and llama.cpp accept) → grammar. Every string the grammar
 * accepts is a JSON text that validates against the schema; the grammar may accept fewer texts than the schema
 * (properties come in the schema's order, listed properties only, bounded whitespace and number lengths).
 * Keywords it cannot enforce are refused by name (UnsupportedParameterError), never ignored.
 */
import { InvalidArgumentError, UnsupportedParameterError } from '../errors.js';
import type { JsonSchema } from './constraint.js';
import { alt, byteRanges, codePoints, EMPTY, literal, NOTHING, optional, ref, repeat, seq, type CodePointRanges, type Expr, type Grammar } from './ir.js';
import { integerInRange, numberInRange, UNBOUNDED_NUMBER } from './numbers.js';
import { anyText, parseRegex } from './regex.js';

// ── JSON text pieces ──

/** Between tokens: nothing, one space, or a newline and up to 20 spaces or tabs of indentation. */
const WS = alt(EMPTY, literal(' '), seq(literal('\n'), repeat(byteRanges([[0x20, 0x20], [0x09, 0x09]]), 0, 20)));
const HEX = byteRanges([[0x30, 0x39], [0x41, 0x46], [0x61, 0x66]]);
/** \uXXXX outside the surrogates: each escape is one character, as a validator counts them. */
const UNICODE_ESCAPE = seq(
  literal('\\u'),
  alt(seq(byteRanges([[0x30, 0x39], [0x41, 0x43], [0x45, 0x46], [0x61, 0x63], [0x65, 0x66]]), HEX, HEX, HEX), seq(byteRanges([[0x44, 0x44], [0x64, 0x64]]), byteRanges([[0x30, 0x37]]), HEX, HEX)),
);
const SHORT_ESCAPES: ReadonlyArray<[number, string]> = [[0x22, '\\"'], [0x5c, '\\\\'], [0x2f, '\\/'], [0x08, '\\b'], [0x0c, '\\f'], [0x0a, '\\n'], [0x0d, '\\r'], [0x09, '\\t']];
/** One character of a JSON string: raw (not '"', '\\' or a control character) or escaped. */
const STRING_CHAR = alt(codePoints([[0x20, 0x21], [0x23, 0x5b], [0x5d, 0x10ffff]]), ...SHORT_ESCAPES.map(([, e]) => literal(e)), UNICODE_ESCAPE);
const QUOTE = literal('"');

/** One character from `ranges` as it may appear inside a JSON string. */
function stringCharIn(ranges: CodePointRanges): Expr {
  const options: Expr[] = [];
  const raw: CodePointRanges = [];
  for (const [lo, hi] of ranges) {
    for (const [a, b] of [[0x20, 0x21], [0x23, 0x5b], [0x5d, 0x10ffff]] as const) {
      if (Math.max(lo, a) <= Math.min(hi, b)) raw.push([Math.max(lo, a), Math.min(hi, b)]);
    }
  }
  options.push(codePoints(raw));
  const has = (cp: number) => ranges.some(([lo, hi]) => lo <= cp && cp <= hi);
  for (const [cp, escape] of SHORT_ESCAPES) if (has(cp)) options.push(literal(escape));
  for (let cp = 0; cp < 0x20; cp++) if (has(cp)) options.push(literal(`\\u${cp.toString(16).padStart(4, '0')}`));
  return alt(...options);
}

function jsonString(chars: Expr = STRING_CHAR, min = 0, max = Infinity): Expr {
  return seq(QUOTE, repeat(chars, min, max), QUOTE);
}

function commaList(item: Expr, min: number, max: number): Expr {
  // item ("," ws item){min-1,max-1}
  const more = repeat(seq(literal(','), WS, item), Math.max(0, min - 1), max === Infinity ? Infinity : max - 1);
  return seq(item, more);
}

function bracketed(open: string, body: Expr, close: string, mayBeEmpty: boolean): Expr {
  const filled = seq(body, WS);
  return seq(literal(open), WS, mayBeEmpty ? optional(filled) : filled, literal(close));
}

// ── Any JSON value (json_object mode, `{}` schemas) ──

const ANY_RULES: ReadonlyArray<[string, Expr]> = [
  ['value', alt(ref('object'), ref('array'), ref('string'), UNBOUNDED_NUMBER, literal('true'), literal('false'), literal('null'))],
  ['object', bracketed('{', commaList(seq(ref('string'), literal(':'), WS, ref('value')), 1, Infinity), '}', true)],
  ['array', bracketed('[', commaList(ref('value'), 1, Infinity), ']', true)],
  ['string', jsonString()],
];
/**
 * Free strings are one called rule: the walk over the vocabulary inside a string (most of it is allowed there)
 * is then done once, not once per string in the schema. A string ends at its quote, so the few tokens that
 * close it and go on are plain to check against each caller.
 */
const SHARED = new Set(['string']);

/** OpenAI's json_object: any JSON object. */
export function jsonObjectGrammar(): Grammar {
  return { rules: new Map([['root', ref('object')], ...ANY_RULES]), root: 'root', shared: SHARED };
}

// ── Schemas ──

/** Keywords that describe and do not constrain. */
const ANNOTATIONS = new Set(['title', 'description', 'default', 'examples', '$schema', '$id', '$comment', 'deprecated', 'readOnly', 'writeOnly', '$defs', 'definitions']);
const KEYWORDS: Record<string, ReadonlySet<string>> = {
  any: new Set(['type', 'enum', 'const', 'anyOf', 'oneOf', 'allOf', '$ref']),
  object: new Set(['properties', 'required', 'additionalProperties']),
  array: new Set(['items', 'prefixItems', 'minItems', 'maxItems', 'uniqueItems']),
  string: new Set(['minLength', 'maxLength', 'pattern', 'format']),
  number: new Set(['minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum']),
};
const TYPES = ['object', 'array', 'string', 'number', 'integer', 'boolean', 'null'] as const;
type TypeName = (typeof TYPES)[number];
const MAX_COUNT = 1000;
const MAX_DEPTH = 64;

export function jsonSchemaGrammar(schema: JsonSchema): Grammar {
  const compiler = new SchemaCompiler(schema);
  const root = compiler.compile(schema, '#');
  return { rules: new Map([['root', root], ...ANY_RULES, ...compiler.refRules]), root: 'root', shared: SHARED };
}

class SchemaCompiler {
  readonly refRules = new Map<string, Expr>();
  constructor(private readonly rootSchema: JsonSchema) {}

  private depth = 0;

  compile(schema: unknown, path: string): Expr {
    if (this.depth >= MAX_DEPTH) throw new InvalidArgumentError(`${path}: the schema is nested more than ${MAX_DEPTH} levels deep.`);
    this.depth++;
    try {
      return this.compileSchema(schema, path);
    } finally {
      this.depth--;
    }
  }

  private compileSchema(schema: unknown, path: string): Expr {
    if (schema === true) return ref('value');
    if (schema === false) return NOTHING;
    if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) throw new InvalidArgumentError(`${path}: a schema must be an object or a boolean.`);
    const s = schema as Record<string, unknown>;
    const keys = Object.keys(s).filter((k) => !ANNOTATIONS.has(k));
    for (const k of keys) {
      if (!Object.values(KEYWORDS).some((set) => set.has(k))) {
        throw new UnsupportedParameterError(`${path}/${k}`, `JSON Schema keyword "${k}" (at ${path}) is not supported by constrained decoding; remove it or use a supported form.`);
      }
    }
    const combinators = keys.filter((k) => k === 'anyOf' || k === 'oneOf' || k === 'allOf' || k === '$ref');
    if (combinators.length > 0) {
      if (keys.length > 1) {
        throw new UnsupportedParameterError(`${path}/${combinators[0]}`, `"${combinators[0]}" (at ${path}) together with ${keys.filter((k) => k !== combinators[0]).map((k) => `"${k}"`).join(', ')} is not supported; move the sibling keywords into each alternative.`);
      }
      return this.combinator(combinators[0]!, s[combinators[0]!], path);
    }
    if ('const' in s) return this.literals([s.const], `${path}/const`);
    if ('enum' in s) {
      if (!Array.isArray(s.enum) || s.enum.length === 0) throw new InvalidArgumentError(`${path}/enum must be a non-empty array.`);
      return this.literals(s.enum, `${path}/enum`);
    }
    const types = this.typesOf(s, path);
    return alt(...types.map((t) => this.typed(t, s, path)));
  }

  private combinator(keyword: string, value: unknown, path: string): Expr {
    if (keyword === '$ref') return this.ref(value, path);
    if (!Array.isArray(value) || value.length === 0) throw new InvalidArgumentError(`${path}/${keyword} must be a non-empty array of schemas.`);
    if (keyword === 'allOf') {
      if (value.length > 1) throw new UnsupportedParameterError(`${path}/allOf`, `"allOf" with more than one schema (at ${path}) is not supported; merge them into one schema.`);
      return this.compile(value[0], `${path}/allOf/0`);
    }
    // oneOf is enforced as anyOf: alternatives that overlap could let a value match more than one.
    return alt(...value.map((v, i) => this.compile(v, `${path}/${keyword}/${i}`)));
  }

  private ref(value: unknown, path: string): Expr {
    if (typeof value !== 'string' || !value.startsWith('#')) {
      throw new UnsupportedParameterError(`${path}/$ref`, `"$ref" ${JSON.stringify(value)} (at ${path}) is not supported: only references inside the schema ("#", "#/$defs/…") are.`);
    }
    const name = `ref:${value}`;
    if (!this.refRules.has(name)) {
      this.refRules.set(name, NOTHING); // placeholder: a recursive reference finds the rule
      this.refRules.set(name, this.compile(this.resolve(value, path), value));
    }
    return ref(name);
  }

  private resolve(pointer: string, path: string): unknown {
    let target: unknown = this.rootSchema;
    for (const raw of pointer.slice(1).split('/').slice(1)) {
      const part = decodeURIComponent(raw).replace(/~1/g, '/').replace(/~0/g, '~');
      if (typeof target !== 'object' || target === null || !(part in target)) throw new InvalidArgumentError(`${path}/$ref: "${pointer}" does not resolve inside the schema.`);
      target = (target as Record<string, unknown>)[part];
    }
    return target;
  }

  /** The values' JSON texts as one byte trie, so that many values sharing prefixes stay a small automaton. */
  private literals(values: unknown[], path: string): Expr {
    interface Node {
      end: boolean;
      next: Map<number, Node>;
    }
    const root: Node = { end: false, next: new Map() };
    for (const v of values) {
      const text = JSON.stringify(v);
      if (text === undefined) throw new InvalidArgumentError(`${path}: ${String(v)} is not a JSON value.`);
      let node = root;
      for (const b of new TextEncoder().encode(text)) {
        let child = node.next.get(b);
        if (!child) node.next.set(b, (child = { end: false, next: new Map() }));
        node = child;
      }
      node.end = true;
    }
    const toExpr = (node: Node): Expr => {
      // A run of single-child nodes is one literal.
      const run: number[] = [];
      while (!node.end && node.next.size === 1) {
        const [b, child] = node.next.entries().next().value!;
        run.push(b);
        node = child;
      }
      const options = [...(node.end ? [EMPTY] : []), ...[...node.next].map(([b, child]) => seq(byteRanges([[b, b]]), toExpr(child)))];
      return seq(literal(Uint8Array.from(run)), alt(...options));
    };
    return toExpr(root);
  }

  private typesOf(s: Record<string, unknown>, path: string): TypeName[] {
    const t = s.type;
    if (t === undefined) {
      // No type: the types whose keywords appear, or any value.
      const implied = (['object', 'array', 'string', 'number'] as const).filter((k) => Object.keys(s).some((key) => KEYWORDS[k]!.has(key)));
      if (implied.length === 0) return [...TYPES];
      return implied.flatMap((k) => (k === 'number' ? (['number'] as TypeName[]) : [k]));
    }
    const list = Array.isArray(t) ? t : [t];
    for (const name of list) if (!TYPES.includes(name as TypeName)) throw new InvalidArgumentError(`${path}/type: unknown type ${JSON.stringify(name)}.`);
    if (list.length === 0) throw new InvalidArgumentError(`${path}/type must name at least one type.`);
    return list as TypeName[];
  }

  private typed(type: TypeName, s: Record<string, unknown>, path: string): Expr {
    switch (type) {
      case 'null':
        return literal('null');
      case 'boolean':
        return alt(literal('true'), literal('false'));
      case 'integer':
        return integerInRange(this.bounds(s, path));
      case 'number':
        return numberInRange(this.bounds(s, path));
      case 'string':
        return this.string(s, path);
      case 'array':
        return this.array(s, path);
      case 'object':
        return this.object(s, path);
    }
  }

  private bounds(s: Record<string, unknown>, path: string) {
    const out: Record<string, number> = {};
    for (const k of ['minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum']) {
      if (s[k] === undefined) continue;
      if (typeof s[k] !== 'number' || !Number.isFinite(s[k])) {
        if (typeof s[k] === 'boolean') throw new UnsupportedParameterError(`${path}/${k}`, `boolean "${k}" (draft 4, at ${path}) is not supported; give the bound as a number.`);
        throw new InvalidArgumentError(`${path}/${k} must be a finite number.`);
      }
      out[k] = s[k] as number;
    }
    return out;
  }

  private count(s: Record<string, unknown>, key: string, path: string): number | undefined {
    const v = s[key];
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw new InvalidArgumentError(`${path}/${key} must be a non-negative integer.`);
    if (v > MAX_COUNT && key.startsWith('min')) throw new UnsupportedParameterError(`${path}/${key}`, `"${key}" above ${MAX_COUNT} (at ${path}) is not supported.`);
    return v;
  }

  private string(s: Record<string, unknown>, path: string): Expr {
    const min = this.count(s, 'minLength', path) ?? 0;
    const maxRaw = this.count(s, 'maxLength', path);
    const max = maxRaw === undefined || maxRaw > MAX_COUNT ? Infinity : maxRaw;
    if (maxRaw !== undefined && maxRaw > MAX_COUNT) {
      throw new UnsupportedParameterError(`${path}/maxLength`, `"maxLength" above ${MAX_COUNT} (at ${path}) is not supported.`);
    }
    if (s.pattern !== undefined) {
      if (typeof s.pattern !== 'string') throw new InvalidArgumentError(`${path}/pattern must be a string.`);
      if (s.minLength !== undefined || s.maxLength !== undefined || s.format !== undefined) {
        throw new UnsupportedParameterError(`${path}/pattern`, `"pattern" together with "minLength", "maxLength" or "format" (at ${path}) is not supported; put the length into the pattern.`);
      }
      const { expr, anchoredStart, anchoredEnd } = parseRegex(s.pattern, stringCharIn, `${path}/pattern`);
      return seq(QUOTE, anchoredStart ? EMPTY : anyText(stringCharIn), expr, anchoredEnd ? EMPTY : anyText(stringCharIn), QUOTE);
    }
    if (s.format !== undefined) {
      const format = FORMATS[s.format as string];
      if (!format) throw new UnsupportedParameterError(`${path}/format`, `"format": ${JSON.stringify(s.format)} (at ${path}) is not supported; supported formats: ${Object.keys(FORMATS).join(', ')}.`);
      if (s.minLength !== undefined || s.maxLength !== undefined) throw new UnsupportedParameterError(`${path}/format`, `"format" together with "minLength"/"maxLength" (at ${path}) is not supported.`);
      return seq(QUOTE, format(), QUOTE);
    }
    return min === 0 && max === Infinity ? ref('string') : jsonString(STRING_CHAR, min, max);
  }

  private array(s: Record<string, unknown>, path: string): Expr {
    if (s.uniqueItems === true) throw new UnsupportedParameterError(`${path}/uniqueItems`, `"uniqueItems": true (at ${path}) is not supported by constrained decoding.`);
    const min = this.count(s, 'minItems', path) ?? 0;
    const max = this.count(s, 'maxItems', path) ?? Infinity;
    if (max !== Infinity && max > MAX_COUNT) throw new UnsupportedParameterError(`${path}/maxItems`, `"maxItems" above ${MAX_COUNT} (at ${path}) is not supported.`);
    const prefix = s.prefixItems === undefined ? [] : s.prefixItems;
    if (!Array.isArray(prefix)) throw new InvalidArgumentError(`${path}/prefixItems must be an array of schemas.`);
    const rest = s.items === undefined ? true : s.items;
    if (Array.isArray(rest)) throw new UnsupportedParameterError(`${path}/items`, `"items" as an array (draft 4 tuples, at ${path}) is not supported; use "prefixItems".`);
    const items = prefix.map((p, i) => this.compile(p, `${path}/prefixItems/${i}`));
    const item = this.compile(rest, `${path}/items`);
    if (max < min) return NOTHING;
    // Lengths n in [min, max]: the first n of the prefix items, then the rest from `items`.
    const options: Expr[] = [];
    for (let n = Math.max(min, 1); n <= Math.min(max, items.length); n++) options.push(joined(items.slice(0, n)));
    if (max > items.length && item !== NOTHING) {
      const extraMin = Math.max(min - items.length, 1);
      const extraMax = max === Infinity ? Infinity : max - items.length;
      const tail = commaList(item, extraMin, extraMax);
      options.push(items.length ? seq(joined(items), literal(','), WS, tail) : tail);
    }
    return bracketed('[', alt(...options), ']', min === 0);
  }

  private object(s: Record<string, unknown>, path: string): Expr {
    const properties = (s.properties ?? {}) as Record<string, unknown>;
    if (typeof properties !== 'object' || properties === null || Array.isArray(properties)) throw new InvalidArgumentError(`${path}/properties must be an object.`);
    const required = (s.required ?? []) as unknown[];
    if (!Array.isArray(required) || required.some((r) => typeof r !== 'string')) throw new InvalidArgumentError(`${path}/required must be an array of strings.`);
    const names = Object.keys(properties);
    for (const r of required as string[]) if (!names.includes(r)) names.push(r); // required without a schema: any value
    const additional = s.additionalProperties ?? true;
    if (names.length === 0) {
      if (additional === false) return seq(literal('{'), WS, literal('}'));
      // A map: any keys, values per additionalProperties.
      const value = this.compile(additional, `${path}/additionalProperties`);
      return bracketed('{', commaList(seq(ref('string'), literal(':'), WS, value), 1, Infinity), '}', true);
    }
    // Listed properties only, in the schema's order (additional ones are allowed by the schema, never required).
    const member = names.map((name) => seq(literal(JSON.stringify(name)), literal(':'), WS, this.compile(properties[name] ?? true, `${path}/properties/${name}`)));
    const isRequired = names.map((n) => (required as string[]).includes(n));
    const later = (from: number): Expr => seq(...member.slice(from).map((m, k) => (isRequired[from + k] ? seq(literal(','), WS, m) : optional(seq(literal(','), WS, m)))));
    const firstRequired = isRequired.indexOf(true);
    const lastFirst = firstRequired < 0 ? names.length - 1 : firstRequired;
    // The first member present is some j up to the first required one; every later one follows a comma.
    const body = alt(...member.slice(0, lastFirst + 1).map((m, j) => seq(m, later(j + 1))));
    return bracketed('{', body, '}', firstRequired < 0);
  }
}

function joined(items: Expr[]): Expr {
  return seq(...items.map((item, i) => (i === 0 ? item : seq(literal(','), WS, item))));
}

// ── Formats (as ajv-formats checks them, a subset of the texts it accepts) ──

const d = (lo: number, hi: number) => byteRanges([[0x30 + lo, 0x30 + hi]]);
const TWO_DIGITS = (max: number) => alt(seq(d(0, Math.floor(max / 10) - 1), d(0, 9)), seq(d(Math.floor(max / 10), Math.floor(max / 10)), d(0, max % 10)));
const DATE = () =>
  seq(
    d(0, 9), d(0, 9), d(0, 9), d(0, 9), literal('-'),
    alt(
      seq(alt(...['01', '03', '05', '07', '08', '10', '12'].map(literal)), literal('-'), alt(seq(d(0, 0), d(1, 9)), seq(d(1, 2), d(0, 9)), seq(d(3, 3), d(0, 1)))),
      seq(alt(...['04', '06', '09', '11'].map(literal)), literal('-'), alt(seq(d(0, 0), d(1, 9)), seq(d(1, 2), d(0, 9)), literal('30'))),
      // February up to the 28th: no leap-year arithmetic needed.
      seq(literal('02-'), alt(seq(d(0, 0), d(1, 9)), seq(d(1, 1), d(0, 9)), seq(d(2, 2), d(0, 8)))),
    ),
  );
const TIME = () => seq(TWO_DIGITS(23), literal(':'), TWO_DIGITS(59), literal(':'), TWO_DIGITS(59), optional(seq(literal('.'), repeat(d(0, 9), 1, 6))), alt(literal('Z'), seq(byteRanges([[0x2b, 0x2b], [0x2d, 0x2d]]), TWO_DIGITS(23), literal(':'), TWO_DIGITS(59))));
const LOWER_HEX = byteRanges([[0x30, 0x39], [0x61, 0x66]]);
const FORMATS: Record<string, () => Expr> = {
  date: DATE,
  time: TIME,
  'date-time': () => seq(DATE(), literal('T'), TIME()),
  uuid: () => seq(...[8, 4, 4, 4, 12].map((n, i) => seq(i ? literal('-') : EMPTY, repeat(LOWER_HEX, n, n)))),
  // Plain forms every validator takes: dot-separated lowercase labels, an http(s) URL, dotted-quad addresses.
  email: () => pattern('[a-z0-9]+([._+-][a-z0-9]+)*@[a-z0-9]+(-[a-z0-9]+)*(\\.[a-z0-9]+(-[a-z0-9]+)*)*\\.[a-z]{2,6}'),
  uri: () => pattern('https?://[a-z0-9]+(-[a-z0-9]+)*(\\.[a-z0-9]+(-[a-z0-9]+)*)*(/[A-Za-z0-9._~-]+)*/?'),
  ipv4: () => pattern('(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}'),
};

function pattern(source: string): Expr {
  return parseRegex(source, stringCharIn, 'format').expr;
}
