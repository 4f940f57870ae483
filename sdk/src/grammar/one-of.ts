/**
 * Whether a `oneOf`'s alternatives are provably exclusive. The grammar writes a value of one alternative; a validator
 * then also requires that value to fail every other one, which a grammar of alternatives cannot enforce in general.
 * Where no value written for one alternative can match another (different JSON types, different listed values, or
 * objects told apart by a required key with different listed values, as tagged unions are), oneOf is anyOf.
 */

/** JSON types as far as telling values apart goes: an integer is a number (ajv takes 1.0 as an integer). */
type Kind = 'object' | 'array' | 'string' | 'number' | 'boolean' | 'null';
const KINDS: readonly Kind[] = ['object', 'array', 'string', 'number', 'boolean', 'null'];

/** What matters of one schema. */
interface Shape {
  /** Kinds of the values a validator accepts. */
  accepts: Set<Kind>;
  /** Kinds of the values the grammar writes (fewer where keywords imply a type, as the compiler reads them). */
  writes: Set<Kind>;
  /** Canonical texts of the values accepted, where the schema lists them (const, enum). */
  values?: Set<string>;
  /** Required keys whose accepted values are listed: a key → the canonical texts of its values. */
  tags: Map<string, Set<string>>;
}

export interface SchemaReader {
  /** The schema a `$ref` points to (throws where it does not resolve). */
  resolve(pointer: string): unknown;
  /** The JSON types the compiler writes for a typed schema (an object schema without `$ref` or combinators). */
  typesOf(schema: Record<string, unknown>): string[];
}

/**
 * The first pair of alternatives (by index) of which some value written for one may match the other, or undefined
 * where every pair is exclusive. Conservative: a pair it cannot tell apart counts as overlapping.
 */
export function overlappingPair(alternatives: unknown[], reader: SchemaReader): [number, number] | undefined {
  const shapes = alternatives.map((a) => shapeOf(a, reader, 0));
  for (let i = 0; i < shapes.length; i++) {
    for (let j = i + 1; j < shapes.length; j++) {
      if (!excludes(shapes[i]!, shapes[j]!) || !excludes(shapes[j]!, shapes[i]!)) return [i, j];
    }
  }
  return undefined;
}

/** No value `a` writes is accepted by `b`. */
function excludes(a: Shape, b: Shape): boolean {
  if (![...a.writes].some((k) => b.accepts.has(k))) return true;
  if (a.values && b.values && ![...a.values].some((v) => b.values!.has(v))) return true;
  // Objects alone, carrying a required key whose listed values b's same required key never takes.
  if (a.writes.size === 1 && a.writes.has('object')) {
    for (const [key, values] of a.tags) {
      const other = b.tags.get(key);
      if (other && ![...values].some((v) => other.has(v))) return true;
    }
  }
  return false;
}

const ANY: Shape = { accepts: new Set(KINDS), writes: new Set(KINDS), tags: new Map() };
const NONE: Shape = { accepts: new Set(), writes: new Set(), tags: new Map() };
/** References followed at most this deep (a recursive schema gives up: overlapping). */
const MAX_DEPTH = 16;

function shapeOf(schema: unknown, reader: SchemaReader, depth: number): Shape {
  if (schema === false) return NONE;
  if (typeof schema !== 'object' || schema === null || depth > MAX_DEPTH) return ANY;
  const s = schema as Record<string, unknown>;
  if (typeof s.$ref === 'string') return shapeOf(reader.resolve(s.$ref), reader, depth + 1);
  if (Array.isArray(s.allOf) && s.allOf.length === 1) return shapeOf(s.allOf[0], reader, depth + 1);
  const union = Array.isArray(s.anyOf) ? s.anyOf : Array.isArray(s.oneOf) ? s.oneOf : undefined;
  if (union) return unionOf(union.map((a) => shapeOf(a, reader, depth + 1)));
  const listed = listedValues(s);
  if (listed) {
    const kinds = new Set(listed.map(kindOf));
    return { accepts: kinds, writes: kinds, values: new Set(listed.map(canonical)), tags: new Map() };
  }
  const accepts = s.type === undefined ? new Set(KINDS) : kindsOf(Array.isArray(s.type) ? s.type : [s.type]);
  const tags = new Map<string, Set<string>>();
  const required = Array.isArray(s.required) ? s.required : [];
  const properties = typeof s.properties === 'object' && s.properties !== null ? (s.properties as Record<string, unknown>) : {};
  for (const key of required) {
    const values = typeof key === 'string' ? listedValues(follow(properties[key], reader)) : undefined;
    if (values) tags.set(key as string, new Set(values.map(canonical)));
  }
  return { accepts, writes: kindsOf(reader.typesOf(s)), tags };
}

function unionOf(shapes: Shape[]): Shape {
  const all = <T>(pick: (s: Shape) => Iterable<T>) => new Set(shapes.flatMap((s) => [...pick(s)]));
  const values = shapes.every((s) => s.values) ? all((s) => s.values!) : undefined;
  // A key tags the union where it tags every alternative.
  const tags = new Map<string, Set<string>>();
  for (const key of shapes[0]?.tags.keys() ?? []) {
    if (shapes.every((s) => s.tags.has(key))) tags.set(key, all((s) => s.tags.get(key)!));
  }
  return { accepts: all((s) => s.accepts), writes: all((s) => s.writes), values, tags };
}

/** A schema's `$ref`s and one-schema `allOf`s followed (a few levels). */
function follow(schema: unknown, reader: SchemaReader): unknown {
  for (let depth = 0; depth < MAX_DEPTH && typeof schema === 'object' && schema !== null; depth++) {
    const s = schema as Record<string, unknown>;
    if (typeof s.$ref === 'string') schema = reader.resolve(s.$ref);
    else if (Array.isArray(s.allOf) && s.allOf.length === 1) schema = s.allOf[0];
    else break;
  }
  return schema;
}

function listedValues(schema: unknown): unknown[] | undefined {
  if (typeof schema !== 'object' || schema === null) return undefined;
  const s = schema as Record<string, unknown>;
  if ('const' in s) return [s.const];
  return Array.isArray(s.enum) ? s.enum : undefined;
}

function kindsOf(types: unknown[]): Set<Kind> {
  return new Set(types.map((t) => (t === 'integer' ? 'number' : (t as Kind))).filter((t) => KINDS.includes(t)));
}

function kindOf(value: unknown): Kind {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value as Kind;
}

/** JSON text with object keys sorted, so that values a validator deems equal compare equal. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const entries = Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${canonical((value as Record<string, unknown>)[k])}`);
    return `{${entries.join(',')}}`;
  }
  return JSON.stringify(value);
}
