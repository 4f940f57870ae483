/**
 * The runtime of a compiled grammar: a nondeterministic pushdown automaton over bytes whose configurations
 * (a rule's DFA state plus a stack of return points) are interned, so a matcher state is one integer and
 * branching it (a draft to check, a rollback) costs nothing.
 *
 * Masks. A configuration's tokens split in two: those that finish inside its own rule (or in rules it calls)
 * do not depend on the stack below it, and those that complete the rule mid-token and go on in the caller.
 * The first kind is computed once per (rule, DFA state) by walking the token trie and cached; only the second,
 * short list is checked against the actual stack. A whole state's mask is cached too (LRU).
 */
import type { Automaton } from './automaton.js';
import { isPlainByte, type TokenTrie } from './token-trie.js';

/** Parent of a root-level configuration, and of the configuration a per-rule walk starts from. */
const ROOT = -1;
const BASE = -2;
/** A set id for "no configuration left": the bytes so far cannot be continued. */
export const DEAD = -1;
const UNKNOWN = -2;

/** What a per-rule walk found: tokens allowed whatever the stack, and trie nodes where the rule completed mid-token. */
interface LocalMask {
  ids?: Int32Array;
  bits?: Uint32Array;
  escapes: Int32Array;
}

interface StateMask {
  bits: Uint32Array;
  count: number;
  first: number;
}

/** Forced text is followed this far at most. */
const MAX_FORCED = 256;

/** Bytes of cached masks a matcher keeps (per compiled grammar): ~440 masks of a 151k vocabulary. */
export const MASK_CACHE_BYTES = 8 << 20;

export class Matcher {
  readonly words: number;
  private readonly nodeRule: number[] = [];
  private readonly nodeState: number[] = [];
  private readonly nodeParent: number[] = [];
  private readonly nodeIds = new Map<string, number>();
  private readonly nodeDist: number[] = [];
  private readonly continuation = new Map<number, number>();

  private readonly setNodes: Int32Array[] = [];
  private readonly setIds = new Map<string, number>();
  /** Per set: whether it may end (or, relative to BASE, escapes), and whether it has configurations; grown by doubling. */
  private setEnd = new Uint8Array(256);
  private setLive = new Uint8Array(256);
  /** Per set: how many plain-text bytes in a row it reads without ending or dying (see plainReach); -1 unknown. */
  private setPlainReach = new Int32Array(256).fill(-1);
  /** trans[set * 256 + byte]: the next set, DEAD, or UNKNOWN until first asked. */
  private trans = new Int32Array(256 * 256).fill(UNKNOWN);
  private readonly setDist: number[] = [];
  private readonly setFarthest = new Map<number, number>();

  private readonly localStarts: Int32Array[];
  private readonly localMasks = new LruCache<LocalMask>(MASK_CACHE_BYTES);
  private readonly masks = new LruCache<StateMask>(MASK_CACHE_BYTES);
  private readonly closing = new LruCache<Uint32Array>(MASK_CACHE_BYTES / 4);
  private readonly within = new LruCache<StateMask>(MASK_CACHE_BYTES / 4);
  private readonly forced = new LruCache<Uint8Array>(1 << 20);
  readonly start: number;
  private readonly nodeStack: Int32Array;
  private readonly setStack: Int32Array;
  private readonly childStack: Int32Array;
  /** The longest run of plain text below any trie node: the most plainReach ever needs to count. */
  private readonly plainCap: number;

  constructor(
    readonly automaton: Automaton,
    readonly trie: TokenTrie,
  ) {
    this.words = (trie.vocabSize + 31) >>> 5;
    const maxDepth = trie.depth.reduce((a, b) => Math.max(a, b), 0) + 1;
    this.nodeStack = new Int32Array(maxDepth);
    this.setStack = new Int32Array(maxDepth);
    this.childStack = new Int32Array(maxDepth);
    this.plainCap = Math.max(1, trie.plainDepth.reduce((a, b) => Math.max(a, b), 0));
    this.localStarts = automaton.rules.map((r) => new Int32Array(r.accept.length).fill(UNKNOWN));
    this.start = this.closure([this.node(0, 0, ROOT)]);
  }

  // ── Configurations and sets of them ──

  private node(rule: number, state: number, parent: number): number {
    const key = `${rule}:${state}:${parent}`;
    let id = this.nodeIds.get(key);
    if (id === undefined) {
      id = this.nodeRule.length;
      this.nodeIds.set(key, id);
      this.nodeRule.push(rule);
      this.nodeState.push(state);
      this.nodeParent.push(parent);
    }
    return id;
  }

  /** Follows calls (push) and completed rules (pop) from `seeds`; keeps the configurations that read bytes. */
  private closure(seeds: number[]): number {
    const kept: number[] = [];
    let end = false;
    const seen = new Set<number>();
    const rules = this.automaton.rules;
    while (seeds.length) {
      const n = seeds.pop()!;
      if (seen.has(n)) continue;
      seen.add(n);
      const r = this.nodeRule[n]!;
      const d = this.nodeState[n]!;
      const parent = this.nodeParent[n]!;
      const rule = rules[r]!;
      if (rule.hasBytes[d]) kept.push(n);
      for (const [callee, ret] of rule.calls[d]!) seeds.push(this.node(callee, 0, this.node(r, ret, parent)));
      if (rule.accept[d]) {
        if (parent < 0) end = true;
        else seeds.push(parent);
      }
    }
    if (kept.length === 0 && !end) return DEAD;
    kept.sort((a, b) => a - b);
    const key = `${kept.join(',')}${end ? 'e' : ''}`;
    let id = this.setIds.get(key);
    if (id === undefined) {
      id = this.setNodes.length;
      this.setIds.set(key, id);
      this.setNodes.push(Int32Array.from(kept));
      if (id >= this.setEnd.length) this.grow();
      this.setEnd[id] = end ? 1 : 0;
      this.setLive[id] = kept.length > 0 ? 1 : 0;
    }
    return id;
  }

  private grow(): void {
    const n = this.setEnd.length * 2;
    const end = new Uint8Array(n);
    end.set(this.setEnd);
    this.setEnd = end;
    const live = new Uint8Array(n);
    live.set(this.setLive);
    this.setLive = live;
    const trans = new Int32Array(n * 256).fill(UNKNOWN);
    trans.set(this.trans);
    this.trans = trans;
    const reach = new Int32Array(n).fill(-1);
    reach.set(this.setPlainReach);
    this.setPlainReach = reach;
  }

  /** The set after one more byte (cached per set and byte). */
  step(set: number, byte: number): number {
    const next = this.trans[set * 256 + byte]!;
    return next !== UNKNOWN ? next : this.computeStep(set, byte);
  }

  private computeStep(set: number, byte: number): number {
    const seeds: number[] = [];
    const rules = this.automaton.rules;
    for (const n of this.setNodes[set]!) {
      const r = this.nodeRule[n]!;
      const to = rules[r]!.next[this.nodeState[n]! * 256 + byte]!;
      if (to >= 0) seeds.push(this.node(r, to, this.nodeParent[n]!));
    }
    const next = seeds.length ? this.closure(seeds) : DEAD;
    this.trans[set * 256 + byte] = next;
    return next;
  }

  /** How many sets of configurations exist (each holds a 1 KB transition row). */
  get setCount(): number {
    return this.setNodes.length;
  }

  /** Whether the grammar may end here (end-of-generation allowed). */
  canEnd(set: number): boolean {
    return this.setEnd[set] === 1;
  }

  /** Whether nothing but the end can follow. */
  isComplete(set: number): boolean {
    return this.setEnd[set] === 1 && this.setLive[set] === 0;
  }

  // ── Masks ──

  mask(set: number): StateMask {
    const cached = this.masks.get(set);
    if (cached) return cached;
    const bits = new Uint32Array(this.words);
    for (const n of this.setNodes[set]!) {
      const local = this.localMask(this.localStart(this.nodeRule[n]!, this.nodeState[n]!));
      if (local.bits) for (let w = 0; w < bits.length; w++) bits[w] |= local.bits[w]!;
      else for (const id of local.ids!) bits[id >>> 5] |= 1 << (id & 31);
      const parent = this.nodeParent[n]!;
      if (local.escapes.length && parent >= 0) {
        const after = this.continuationOf(parent);
        for (const node of local.escapes) this.walk(node, after, bits);
      }
    }
    if (this.setEnd[set] === 1) for (const id of this.trie.eog) bits[id >>> 5] |= 1 << (id & 31);
    let count = 0;
    let first = -1;
    for (let w = 0; w < bits.length; w++) {
      const x = bits[w]!;
      if (x === 0) continue;
      if (first < 0) first = (w << 5) | (31 - Math.clz32(x & -x));
      count += popcount(x);
    }
    const result = { bits, count, first };
    this.masks.set(set, result, bits.byteLength);
    return result;
  }

  private localStart(rule: number, state: number): number {
    const starts = this.localStarts[rule]!;
    if (starts[state] === UNKNOWN) starts[state] = this.closure([this.node(rule, state, BASE)]);
    return starts[state]!;
  }

  private continuationOf(node: number): number {
    let set = this.continuation.get(node);
    if (set === undefined) this.continuation.set(node, (set = this.closure([node])));
    return set;
  }

  /** Tokens from a configuration relative to BASE: allowed in any context, or escaping (completing the rule) mid-token. */
  private localMask(start: number): LocalMask {
    let local = this.localMasks.get(start);
    if (local) return local;
    const bits = new Uint32Array(this.words);
    let count = 0;
    const escapes: number[] = [];
    const { byte, end, tokenStart, tokens, plainDepth } = this.trie;
    const trans = this.trans;
    // Depth-first over the trie with explicit stacks: node, the set before its children, the next child.
    const nodeStack = this.nodeStack;
    const setStack = this.setStack;
    const childStack = this.childStack;
    let top = 0;
    nodeStack[0] = 0;
    setStack[0] = start;
    childStack[0] = 1;
    while (top >= 0) {
      const c = childStack[top]!;
      if (c >= end[nodeStack[top]!]!) {
        top--;
        continue;
      }
      childStack[top] = end[c]!;
      let next = trans[setStack[top]! * 256 + byte[c]!]!;
      if (next === UNKNOWN) {
        next = this.step(setStack[top]!, byte[c]!);
        if (this.trans !== trans) return this.localMask(start); // the table grew: start over with the new one
      }
      if (next === DEAD) continue;
      for (let t = tokenStart[c]!; t < tokenStart[c + 1]!; t++) {
        const id = tokens[t]!;
        bits[id >>> 5] |= 1 << (id & 31);
        count++;
      }
      if (end[c]! > c + 1) {
        if (this.setEnd[next] === 1) escapes.push(c);
        const plain = plainDepth[c]!;
        if (plain > 0 && this.setLive[next] === 1 && this.plainReach(next) >= plain) {
          // Every token below is plain text the grammar reads to its last byte: accept them without stepping.
          for (let t = tokenStart[c + 1]!; t < tokenStart[end[c]!]!; t++) {
            const id = tokens[t]!;
            bits[id >>> 5] |= 1 << (id & 31);
            count++;
          }
        } else if (this.setLive[next] === 1) {
          top++;
          nodeStack[top] = c;
          setStack[top] = next;
          childStack[top] = c + 1;
        }
      }
    }
    local = { escapes: Int32Array.from(escapes) };
    // A list while it is smaller than the bitset.
    if (count < this.words) local.ids = idsOf(bits, count);
    else local.bits = bits;
    this.localMasks.set(start, local, (local.bits ?? local.ids!).byteLength + local.escapes.byteLength);
    return local;
  }

  /**
   * How many plain-text bytes (isPlainByte) in a row `set` reads, each byte of them leading to one same live set
   * that cannot end there (so no token can escape mid-way), counted up to the longest plain run in the trie:
   * past that, more makes no difference.
   */
  private plainReach(set: number): number {
    const chain: number[] = [];
    let reach = -1;
    for (let at = set; ; ) {
      if (this.setPlainReach[at]! >= 0) {
        reach = this.setPlainReach[at]!;
        break;
      }
      if (chain.length > this.plainCap) break;
      chain.push(at);
      let next = DEAD;
      for (let b = 0x20; b <= 0x7e; b++) {
        if (!isPlainByte(b)) continue;
        const to = this.step(at, b);
        if (to === DEAD || (next !== DEAD && to !== next)) {
          next = DEAD;
          break;
        }
        next = to;
      }
      if (next === DEAD || this.setLive[next] !== 1 || this.setEnd[next] === 1) break; // `at` reaches 0
      at = next;
    }
    if (chain.length > this.plainCap) {
      // Counted far enough for the first set; the others' counts are not known to the end of the chain.
      this.setPlainReach[set] = this.plainCap;
      return this.plainCap;
    }
    // Each set of the chain reaches one more than the set after it (the last one: 0, or what was known).
    for (let k = chain.length - 1; k >= 0; k--) {
      reach = Math.min(reach + 1, this.plainCap);
      this.setPlainReach[chain[k]!] = reach;
    }
    return this.setPlainReach[set]!;
  }

  /** Marks the tokens below trie node `i` that `set` accepts (their bytes past node i). */
  private walk(i: number, set: number, bits: Uint32Array): void {
    const { byte, end, tokenStart, tokens } = this.trie;
    for (let c = i + 1; c < end[i]!; c = end[c]!) {
      const next = this.step(set, byte[c]!);
      if (next === DEAD) continue;
      for (let t = tokenStart[c]!; t < tokenStart[c + 1]!; t++) bits[tokens[t]! >>> 5] |= 1 << (tokens[t]! & 31);
      if (end[c]! > c + 1 && this.setLive[next] === 1) this.walk(c, next, bits);
    }
  }

  // ── Forced text ──

  /** The bytes every continuation starts with (up to MAX_FORCED): stops where two bytes, or the end, are possible. */
  forcedBytes(set: number): Uint8Array {
    const cached = this.forced.get(set);
    if (cached) return cached;
    const out: number[] = [];
    for (let at = set; out.length < MAX_FORCED && this.setEnd[at] !== 1; ) {
      let only = -1;
      for (let b = 0; b < 256; b++) {
        if (this.step(at, b) === DEAD) continue;
        if (only >= 0) {
          only = -2;
          break;
        }
        only = b;
      }
      if (only < 0) break;
      out.push(only);
      at = this.step(at, only);
    }
    const bytes = Uint8Array.from(out);
    this.forced.set(set, bytes, bytes.byteLength + 64);
    return bytes;
  }

  /** `bytes` cut into tokens, the longest token that fits first; stops where no token fits. */
  tokensOf(bytes: Uint8Array): number[] {
    const { byte, end, tokenStart, tokens } = this.trie;
    const ids: number[] = [];
    for (let p = 0; p < bytes.length; ) {
      let node = 0;
      let best = -1;
      let bestLength = 0;
      for (let d = p; d < bytes.length; d++) {
        let child = node + 1;
        while (child < end[node]! && byte[child] !== bytes[d]) child = end[child]!;
        if (child >= end[node]!) break;
        node = child;
        if (tokenStart[node]! < tokenStart[node + 1]!) (best = tokens[tokenStart[node]!]!), (bestLength = d - p + 1);
      }
      if (best < 0) break;
      ids.push(best);
      p += bestLength;
    }
    return ids;
  }

  // ── Closing ──

  /** Fewest bytes that complete the grammar from this set. */
  bytesToClose(set: number): number {
    let dist = this.setDist[set];
    if (dist === undefined) {
      dist = this.setEnd[set] === 1 ? 0 : Infinity;
      for (const n of this.setNodes[set]!) dist = Math.min(dist, this.distOf(n));
      this.setDist[set] = dist;
    }
    return dist;
  }

  private distOf(node: number): number {
    let dist = this.nodeDist[node];
    if (dist === undefined) {
      const parent = this.nodeParent[node]!;
      dist = this.automaton.rules[this.nodeRule[node]!]!.dist[this.nodeState[node]!]! + (parent >= 0 ? this.distOf(parent) : 0);
      this.nodeDist[node] = dist;
    }
    return dist;
  }

  /** Tokens that lie on a shortest completion (each of their bytes brings the end one byte closer), or end-of-generation. */
  closingMask(set: number): Uint32Array {
    const cached = this.closing.get(set);
    if (cached) return cached;
    const bits = new Uint32Array(this.words);
    if (this.setEnd[set] === 1) for (const id of this.trie.eog) bits[id >>> 5] |= 1 << (id & 31);
    const { byte, end, tokenStart, tokens } = this.trie;
    const visit = (i: number, at: number, remaining: number): void => {
      for (let c = i + 1; c < end[i]!; c = end[c]!) {
        const next = this.step(at, byte[c]!);
        if (next === DEAD || this.bytesToClose(next) !== remaining - 1) continue;
        for (let t = tokenStart[c]!; t < tokenStart[c + 1]!; t++) bits[tokens[t]! >>> 5] |= 1 << (tokens[t]! & 31);
        if (remaining > 1 && end[c]! > c + 1) visit(c, next, remaining - 1);
      }
    };
    const remaining = this.bytesToClose(set);
    if (remaining > 0) visit(0, set, remaining);
    this.closing.set(set, bits, bits.byteLength);
    return bits;
  }

  /**
   * The allowed tokens after which the output can still complete in `budget` bytes, and end-of-generation where the
   * output may end: what a generation with `budget + 1` tokens left after this one may pick and still close.
   */
  maskWithin(set: number, budget: number): StateMask {
    const key = set * 2 ** 21 + Math.min(Math.max(budget + 1, 0), 2 ** 21 - 1);
    const cached = this.within.get(key);
    if (cached) return cached;
    const bits = new Uint32Array(this.words);
    let count = 0;
    if (this.setEnd[set] === 1) for (const id of this.trie.eog) (bits[id >>> 5] |= 1 << (id & 31)), count++;
    const { byte, end, tokenStart, tokens, plainDepth } = this.trie;
    const take = (from: number, to: number) => {
      for (let t = from; t < to; t++) bits[tokens[t]! >>> 5] |= 1 << (tokens[t]! & 31);
      count += to - from;
    };
    const visit = (i: number, at: number): void => {
      for (let c = i + 1; c < end[i]!; c = end[c]!) {
        const next = this.step(at, byte[c]!);
        if (next === DEAD) continue;
        if (this.bytesToClose(next) <= budget) take(tokenStart[c]!, tokenStart[c + 1]!);
        if (end[c]! <= c + 1 || this.setLive[next] !== 1) continue;
        // Inside free text every token below reads the same chain of sets: take them all when each is within budget.
        const plain = plainDepth[c]!;
        if (plain > 0 && this.plainReach(next) >= plain && this.plainChainWithin(next, plain, budget)) take(tokenStart[c + 1]!, tokenStart[end[c]!]!);
        else visit(c, next);
      }
    };
    if (budget >= 0) visit(0, set);
    let first = -1;
    for (let w = 0; w < bits.length && first < 0; w++) if (bits[w] !== 0) first = (w << 5) | (31 - Math.clz32(bits[w]! & -bits[w]!));
    const result = { bits, count, first };
    this.within.set(key, result, bits.byteLength);
    return result;
  }

  /** Whether the `length` sets that plain bytes lead through from `set` all complete within `budget` bytes. */
  private plainChainWithin(set: number, length: number, budget: number): boolean {
    return this.plainChainFarthest(set, length) <= budget;
  }

  /** The most bytes to completion among the `length` sets that plain bytes lead through from `set`. */
  private plainChainFarthest(set: number, length: number): number {
    let far = 0;
    for (let k = 0, at = set; k < length; k++) {
      at = this.step(at, 0x61); // any plain byte leads to the same set (see plainReach)
      if (at === DEAD) return Infinity;
      far = Math.max(far, this.bytesToClose(at));
    }
    return far;
  }

  /**
   * At least the most bytes to completion any allowed token leaves (an upper bound where free text is taken whole):
   * while the budget exceeds it, maskWithin is the whole mask. Cached per set.
   */
  farthestAfter(set: number): number {
    let far = this.setFarthest.get(set);
    if (far !== undefined) return far;
    let most = 0;
    const { byte, end, tokenStart, plainDepth } = this.trie;
    const visit = (i: number, at: number): void => {
      for (let c = i + 1; c < end[i]!; c = end[c]!) {
        const next = this.step(at, byte[c]!);
        if (next === DEAD) continue;
        if (tokenStart[c]! < tokenStart[c + 1]!) most = Math.max(most, this.bytesToClose(next));
        if (end[c]! <= c + 1 || this.setLive[next] !== 1) continue;
        const plain = plainDepth[c]!;
        if (plain > 0 && this.plainReach(next) >= plain) most = Math.max(most, this.plainChainFarthest(next, plain));
        else visit(c, next);
      }
    };
    visit(0, set);
    far = most;
    this.setFarthest.set(set, far);
    return far;
  }
}

function idsOf(bits: Uint32Array, count: number): Int32Array {
  const ids = new Int32Array(count);
  let k = 0;
  for (let w = 0; w < bits.length; w++) {
    for (let x = bits[w]!; x !== 0; x &= x - 1) ids[k++] = (w << 5) | (31 - Math.clz32(x & -x));
  }
  return ids;
}

function popcount(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return (Math.imul((x + (x >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24) as number;
}

/** A Map kept under a byte budget, least recently used out first. */
class LruCache<V> {
  private readonly entries = new Map<number, { value: V; bytes: number }>();
  private bytes = 0;
  constructor(private readonly budget: number) {}

  get(key: number): V | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    this.entries.delete(key);
    this.entries.set(key, entry);
    return entry.value;
  }

  set(key: number, value: V, bytes: number): void {
    this.entries.set(key, { value, bytes });
    this.bytes += bytes;
    for (const [k, e] of this.entries) {
      if (this.bytes <= this.budget || this.entries.size <= 1) break;
      this.entries.delete(k);
      this.bytes -= e.bytes;
    }
  }
}
