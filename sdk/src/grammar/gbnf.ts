/**
 * GBNF, llama.cpp's grammar format: `name ::= alternatives`, "literals" with C-style escapes, [character classes]
 * (with ^ and ranges), `.` for any character, (groups), references to rules (names of letters, digits, "-", "_"),
 * and the quantifiers * + ? {m} {m,} {m,n} {,n}. `#` starts a comment. A rule ends at a newline outside parentheses unless the line ends with "|" or
 * the next one starts with it. Token references (<…>) are refused.
 */
import { InvalidArgumentError, UnsupportedParameterError } from '../errors.js';
import { alt, codePoints, complementRanges, literal, MAX_CODE_POINT, ref, repeat, seq, type CodePointRanges, type Expr, type Grammar } from './ir.js';

const MAX_REPEAT = 1000;
const MAX_NESTING = 64;

export function parseGbnf(source: string, root = 'root'): Grammar {
  const parser = new GbnfParser(source);
  const rules = parser.parse();
  if (!rules.has(root)) throw new InvalidArgumentError(`grammar: no rule named "${root}" (the start rule).`);
  return { rules, root };
}

class GbnfParser {
  private i = 0;
  private readonly cps: number[];
  private readonly rules = new Map<string, Expr>();
  private depth = 0;

  constructor(source: string) {
    this.cps = Array.from(source, (c) => c.codePointAt(0)!);
  }

  parse(): Map<string, Expr> {
    this.space(true);
    while (this.i < this.cps.length) {
      const name = this.name();
      if (!name) this.fail('expected a rule name');
      this.space(false);
      if (!this.take('::=')) this.fail(`expected "::=" after "${name}"`);
      this.space(true);
      const body = this.alternatives(false);
      if (this.rules.has(name)) this.fail(`rule "${name}" is defined twice`);
      this.rules.set(name, body);
      this.space(true);
    }
    return this.rules;
  }

  private ch(): string | undefined {
    const c = this.cps[this.i];
    return c === undefined ? undefined : String.fromCodePoint(c);
  }

  private take(text: string): boolean {
    const cps = Array.from(text, (c) => c.codePointAt(0)!);
    if (cps.some((c, k) => this.cps[this.i + k] !== c)) return false;
    this.i += cps.length;
    return true;
  }

  private fail(message: string): never {
    const before = String.fromCodePoint(...this.cps.slice(0, this.i));
    const line = before.split('\n').length;
    throw new InvalidArgumentError(`grammar: ${message} at line ${line}, column ${this.i - before.lastIndexOf('\n')}.`);
  }

  /** Skips blanks and comments; newlines only where `newlines`. */
  private space(newlines: boolean): void {
    for (;;) {
      const c = this.ch();
      if (c === ' ' || c === '\t' || ((c === '\n' || c === '\r') && newlines)) this.i++;
      else if (c === '#') while (this.ch() !== undefined && this.ch() !== '\n') this.i++;
      else return;
    }
  }

  private name(): string {
    const start = this.i;
    while (/[A-Za-z0-9_-]/.test(this.ch() ?? '')) this.i++;
    return String.fromCodePoint(...this.cps.slice(start, this.i));
  }

  private alternatives(nested: boolean): Expr {
    const options = [this.sequence(nested)];
    for (;;) {
      // A line that starts with "|" goes on with the rule.
      const save = this.i;
      this.space(true);
      if (this.ch() !== '|') {
        this.i = save;
        break;
      }
      this.i++;
      this.space(true);
      options.push(this.sequence(nested));
    }
    return alt(...options);
  }

  private sequence(nested: boolean): Expr {
    const items: Expr[] = [];
    for (;;) {
      const c = this.ch();
      let item: Expr;
      if (c === '"') item = this.literal();
      else if (c === '[') item = this.charClass();
      else if (c === '.') (this.i++, (item = codePoints([[0, MAX_CODE_POINT]])));
      else if (c === '(') {
        if (++this.depth > MAX_NESTING) this.fail(`parentheses nested more than ${MAX_NESTING} deep`);
        this.i++;
        this.space(true);
        item = this.alternatives(true);
        if (this.ch() !== ')') this.fail('expected ")"');
        this.i++;
        this.depth--;
      } else if (c === '<' || (c === '!' && this.cps[this.i + 1] === 0x3c)) {
        throw new UnsupportedParameterError('grammar', 'grammar: token references ("<…>") are not supported; write the text as a "literal".');
      } else if (c !== undefined && /[A-Za-z0-9_-]/.test(c)) {
        // A name followed by "::=" starts the next rule.
        const save = this.i;
        const name = this.name();
        this.space(false);
        if (this.take('::=')) {
          this.i = save;
          break;
        }
        this.i = save + Array.from(name).length;
        item = ref(name);
      } else break;
      this.space(nested);
      items.push(this.quantifiers(item, nested));
    }
    return seq(...items);
  }

  private quantifiers(item: Expr, nested: boolean): Expr {
    for (;;) {
      const c = this.ch();
      if (c === '*') item = repeat(item, 0, Infinity);
      else if (c === '+') item = repeat(item, 1, Infinity);
      else if (c === '?') item = repeat(item, 0, 1);
      else if (c === '{') {
        const m = /^\{\s*(\d*)\s*(,\s*(\d*)\s*)?\}/.exec(String.fromCodePoint(...this.cps.slice(this.i, this.i + 32)));
        if (!m || (m[1] === '' && m[2] === undefined)) this.fail('a bad repetition {m,n}');
        const min = m[1] === '' ? 0 : Number(m[1]);
        const max = m[2] === undefined ? min : m[3] === '' ? Infinity : Number(m[3]);
        if (max < min) this.fail('a repetition {m,n} with n < m');
        if (min > MAX_REPEAT || (max !== Infinity && max > MAX_REPEAT)) throw new UnsupportedParameterError('grammar', `grammar: repetition counts above ${MAX_REPEAT} are not supported.`);
        this.i += Array.from(m[0]).length - 1;
        item = repeat(item, min, max);
      } else return item;
      this.i++;
      this.space(nested);
    }
  }

  private literal(): Expr {
    this.i++;
    let text = '';
    while (this.ch() !== '"') {
      if (this.ch() === undefined || this.ch() === '\n') this.fail('unterminated string');
      text += String.fromCodePoint(this.char());
    }
    this.i++;
    return literal(text);
  }

  private charClass(): Expr {
    this.i++;
    const negate = this.ch() === '^';
    if (negate) this.i++;
    const ranges: CodePointRanges = [];
    while (this.ch() !== ']') {
      if (this.ch() === undefined) this.fail('unterminated character class');
      const lo = this.char();
      if (this.ch() === '-' && this.cps[this.i + 1] !== 0x5d && this.cps[this.i + 1] !== undefined) {
        this.i++;
        const hi = this.char();
        if (hi < lo) this.fail('a range out of order');
        ranges.push([lo, hi]);
      } else ranges.push([lo, lo]);
    }
    this.i++;
    return codePoints(negate ? complementRanges(ranges) : ranges);
  }

  /** One character of a literal or class, with llama.cpp's escapes. */
  private char(): number {
    const c = this.cps[this.i++]!;
    if (c !== 0x5c) return c;
    const e = this.ch();
    this.i++;
    const hex = (n: number): number => {
      const text = String.fromCodePoint(...this.cps.slice(this.i, this.i + n));
      if (!new RegExp(`^[0-9a-fA-F]{${n}}$`).test(text)) this.fail(`a bad escape "\\${e}${text}"`);
      this.i += n;
      return parseInt(text, 16);
    };
    switch (e) {
      case 'n': return 10;
      case 'r': return 13;
      case 't': return 9;
      case 'x': return hex(2);
      case 'u': return hex(4);
      case 'U': return hex(8);
      case '\\': case '"': case '[': case ']': case '-': case '^': case '/': return e.codePointAt(0)!;
      default: return this.fail(`an unknown escape "\\${e ?? ''}"`);
    }
  }
}
