/**
 * The regular subset of ECMAScript regular expressions (JSON Schema's `pattern`): literals, escapes (\d \w \s
 * and their negations, \xHH, \uHHHH, \u{…}), classes, `.`, groups, alternation, greedy or lazy quantifiers, and
 * ^ / $ at the ends. Backreferences, lookaround and word boundaries match no regular language: refused by name.
 */
import { InvalidArgumentError, UnsupportedParameterError } from '../errors.js';
import { alt, complementRanges, repeat, seq, type CodePointRanges, type Expr } from './ir.js';

export interface ParsedRegex {
  expr: Expr;
  anchoredStart: boolean;
  anchoredEnd: boolean;
}

const DIGITS: CodePointRanges = [[0x30, 0x39]];
const WORD: CodePointRanges = [[0x30, 0x39], [0x41, 0x5a], [0x5f, 0x5f], [0x61, 0x7a]];
const SPACE: CodePointRanges = [[0x09, 0x0d], [0x20, 0x20], [0xa0, 0xa0], [0x1680, 0x1680], [0x2000, 0x200a], [0x2028, 0x2029], [0x202f, 0x202f], [0x205f, 0x205f], [0x3000, 0x3000], [0xfeff, 0xfeff]];
const LINE_TERMINATORS: CodePointRanges = [[0x0a, 0x0a], [0x0d, 0x0d], [0x2028, 0x2029]];
const MAX_REPEAT = 1000;
const MAX_NESTING = 64;

/** `char` turns a set of code points into the bytes that spell one of them where the text goes (e.g. JSON-escaped). */
export function parseRegex(source: string, char: (ranges: CodePointRanges) => Expr, where: string): ParsedRegex {
  const p = new RegexParser(source, char, where);
  return p.parse();
}

class RegexParser {
  private i = 0;
  private depth = 0;
  private readonly cps: number[];
  constructor(
    source: string,
    private readonly char: (ranges: CodePointRanges) => Expr,
    private readonly where: string,
  ) {
    this.cps = Array.from(source, (c) => c.codePointAt(0)!);
  }

  parse(): ParsedRegex {
    const anchoredStart = this.eat('^');
    const expr = this.alternation();
    let anchoredEnd = false;
    if (this.eat('$')) anchoredEnd = true;
    if (this.i < this.cps.length) this.fail(`unexpected "${String.fromCodePoint(this.cps[this.i]!)}"`);
    return { expr, anchoredStart, anchoredEnd };
  }

  private peek(): string | undefined {
    const c = this.cps[this.i];
    return c === undefined ? undefined : String.fromCodePoint(c);
  }

  private eat(c: string): boolean {
    if (this.peek() !== c) return false;
    this.i++;
    return true;
  }

  private fail(message: string): never {
    throw new InvalidArgumentError(`${this.where}: invalid regular expression at offset ${this.i}: ${message}.`);
  }

  private unsupported(feature: string): never {
    throw new UnsupportedParameterError(`${this.where}`, `${this.where}: regular expression ${feature} is not supported (only regular patterns can be enforced while decoding).`);
  }

  private alternation(): Expr {
    const options = [this.sequence()];
    while (this.eat('|')) options.push(this.sequence());
    return alt(...options);
  }

  private sequence(): Expr {
    const items: Expr[] = [];
    for (;;) {
      const c = this.peek();
      if (c === undefined || c === '|' || c === ')') break;
      if (c === '$') {
        if (this.i === this.cps.length - 1) break;
        this.unsupported('"$" before the end');
      }
      if (c === '^') this.unsupported('"^" after the start');
      items.push(this.quantified(this.atom()));
    }
    return seq(...items);
  }

  private quantified(atom: Expr): Expr {
    let min: number;
    let max: number;
    const c = this.peek();
    if (c === '*') (min = 0), (max = Infinity), this.i++;
    else if (c === '+') (min = 1), (max = Infinity), this.i++;
    else if (c === '?') (min = 0), (max = 1), this.i++;
    else if (c === '{' && /^\{\d+(,\d*)?\}/.test(this.rest())) {
      const m = /^\{(\d+)(,(\d*))?\}/.exec(this.rest())!;
      this.i += m[0].length;
      min = Number(m[1]);
      max = m[2] === undefined ? min : m[3] === '' ? Infinity : Number(m[3]);
      if (max < min) this.fail('a quantifier {n,m} with m < n');
      if (min > MAX_REPEAT || (max !== Infinity && max > MAX_REPEAT)) this.unsupported(`repetition counts above ${MAX_REPEAT}`);
    } else return atom;
    this.eat('?'); // lazy: the same language
    if (this.peek() === '+') this.unsupported('possessive quantifiers');
    return this.quantified(repeat(atom, min, max));
  }

  private rest(): string {
    return String.fromCodePoint(...this.cps.slice(this.i, this.i + 24));
  }

  private atom(): Expr {
    const c = this.peek()!;
    this.i++;
    switch (c) {
      case '(': {
        if (++this.depth > MAX_NESTING) this.fail(`groups nested more than ${MAX_NESTING} deep`);
        if (this.eat('?')) {
          if (this.eat(':')) {
            /* non-capturing */
          } else if (this.peek() === '<' && /^<[A-Za-z_]/.test(this.rest())) {
            while (this.peek() !== '>' && this.peek() !== undefined) this.i++;
            this.eat('>');
          } else this.unsupported('lookaround "(?=", "(?!", "(?<=", "(?<!"');
        }
        const inner = this.alternation();
        if (!this.eat(')')) this.fail('missing ")"');
        this.depth--;
        return inner;
      }
      case '[':
        return this.char(this.charClass());
      case '.':
        return this.char(complementRanges(LINE_TERMINATORS));
      case '\\':
        return this.char(this.escape(false));
      case ')':
      case '*':
      case '+':
      case '?':
        return this.fail(`"${c}" has nothing to apply to`);
      case '{':
      case '}':
      case ']':
      default:
        return this.char([[c.codePointAt(0)!, c.codePointAt(0)!]]);
    }
  }

  private charClass(): CodePointRanges {
    const negate = this.eat('^');
    const ranges: CodePointRanges = [];
    while (this.peek() !== ']') {
      if (this.peek() === undefined) this.fail('missing "]"');
      const lo = this.classAtom();
      if (this.peek() === '-' && this.cps[this.i + 1] !== undefined && String.fromCodePoint(this.cps[this.i + 1]!) !== ']') {
        this.i++;
        const hi = this.classAtom();
        if (lo.length !== 1 || hi.length !== 1 || lo[0]![0] !== lo[0]![1] || hi[0]![0] !== hi[0]![1]) this.fail('a range between classes');
        if (hi[0]![0] < lo[0]![0]) this.fail('a range out of order');
        ranges.push([lo[0]![0], hi[0]![0]]);
      } else ranges.push(...lo);
    }
    this.i++;
    return negate ? complementRanges(ranges) : ranges;
  }

  private classAtom(): CodePointRanges {
    const c = this.peek()!;
    this.i++;
    if (c === '\\') return this.escape(true);
    const cp = c.codePointAt(0)!;
    return [[cp, cp]];
  }

  private escape(inClass: boolean): CodePointRanges {
    const c = this.peek();
    if (c === undefined) this.fail('"\\" at the end');
    this.i++;
    const one = (cp: number): CodePointRanges => [[cp, cp]];
    switch (c) {
      case 'd': return DIGITS;
      case 'D': return complementRanges(DIGITS);
      case 'w': return WORD;
      case 'W': return complementRanges(WORD);
      case 's': return SPACE;
      case 'S': return complementRanges(SPACE);
      case 't': return one(9);
      case 'n': return one(10);
      case 'v': return one(11);
      case 'f': return one(12);
      case 'r': return one(13);
      case '0': return one(0);
      case 'b':
        if (inClass) return one(8);
        return this.unsupported('word boundaries "\\b"');
      case 'B': return this.unsupported('word boundaries "\\B"');
      case 'x': return one(this.hex(2));
      case 'u': {
        if (this.eat('{')) {
          const start = this.i;
          while (this.peek() !== '}' && this.peek() !== undefined) this.i++;
          const cp = parseInt(String.fromCodePoint(...this.cps.slice(start, this.i)), 16);
          if (!this.eat('}') || !(cp >= 0 && cp <= 0x10ffff)) this.fail('a bad \\u{…} escape');
          return one(cp);
        }
        return one(this.hex(4));
      }
      case 'p':
      case 'P':
        return this.unsupported('Unicode property escapes "\\p{…}"');
      case 'k':
        return this.unsupported('named backreferences "\\k<…>"');
      default:
        if (/[1-9]/.test(c)) return this.unsupported('backreferences "\\1"');
        return one(c.codePointAt(0)!);
    }
  }

  private hex(n: number): number {
    const text = String.fromCodePoint(...this.cps.slice(this.i, this.i + n));
    if (!new RegExp(`^[0-9a-fA-F]{${n}}$`).test(text)) this.fail(`a bad hex escape "${text}"`);
    this.i += n;
    return parseInt(text, 16);
  }
}

/** For an unanchored side: any run of characters. */
export function anyText(char: (ranges: CodePointRanges) => Expr): Expr {
  return repeat(char([[0, 0x10ffff]]), 0, Infinity);
}
