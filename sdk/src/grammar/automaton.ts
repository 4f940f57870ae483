/**
 * Grammar → recursive transition network: one byte-level DFA per rule that must stay a call (the root and every
 * rule on a reference cycle); every other reference is inlined, so a grammar without recursion becomes one DFA.
 * A DFA state's `calls` enter another rule and come back to a return state when that rule accepts.
 * States from which the rule cannot be completed are pruned, so every live state can still reach the end.
 */
import { InvalidArgumentError } from '../errors.js';
import type { Expr, Grammar } from './ir.js';

export interface RuleAutomaton {
  readonly name: string;
  /** Next state per (state, byte): next[state * 256 + byte], -1 where the byte is not allowed. The start is state 0. */
  readonly next: Int32Array;
  /** Whether the rule may end in this state (then a call returns to its caller). */
  readonly accept: Uint8Array;
  /** Whether any byte leads on from this state. */
  readonly hasBytes: Uint8Array;
  /** Per state: [callee rule index, return state in this rule] pairs. */
  readonly calls: ReadonlyArray<ReadonlyArray<readonly [number, number]>>;
  /** Fewest bytes from this state to the rule's end. */
  readonly dist: Float64Array;
}

export interface Automaton {
  /** rules[0] is the root. */
  readonly rules: readonly RuleAutomaton[];
}

/** Limits that keep a hostile or runaway grammar from exhausting memory (a Worker has 128 MB). */
const MAX_NFA_STATES = 200_000;
const MAX_DFA_STATES = 50_000;
/** Rules are inlined recursively: this also bounds the recursion depth. */
const MAX_RULES = 1000;

export function buildAutomaton(grammar: Grammar): Automaton {
  if (grammar.rules.size > MAX_RULES) throw new InvalidArgumentError(`the grammar has ${grammar.rules.size} rules; at most ${MAX_RULES} are supported.`);
  for (const [name, body] of grammar.rules) checkRefs(body, grammar, name);
  if (!grammar.rules.has(grammar.root)) throw new InvalidArgumentError(`the grammar has no root rule "${grammar.root}".`);
  const called = calledRules(grammar);
  const index = new Map(called.map((name, i) => [name, i]));
  const nfas = called.map((name) => buildNfa(grammar, name, index));
  const rules = nfas.map((nfa, i) => determinize(called[i]!, nfa));
  const minLen = computeDistances(rules);
  if (!Number.isFinite(minLen[0]!)) throw new InvalidArgumentError(`the grammar matches no string (rule "${called[0]}" can never be completed).`);
  prune(rules, minLen);
  checkLeftRecursion(rules, minLen);
  return { rules };
}

function checkRefs(expr: Expr, grammar: Grammar, inRule: string): void {
  if (expr.kind === 'ref') {
    if (!grammar.rules.has(expr.rule)) throw new InvalidArgumentError(`rule "${inRule}" refers to an undefined rule "${expr.rule}".`);
  } else if (expr.kind === 'seq' || expr.kind === 'alt') {
    for (const item of expr.items) checkRefs(item, grammar, inRule);
  } else if (expr.kind === 'repeat') checkRefs(expr.item, grammar, inRule);
}

/** The root first, then every rule that lies on a cycle of references (Tarjan's strongly connected components) or is shared. */
function calledRules(grammar: Grammar): string[] {
  const refsOf = new Map<string, Set<string>>();
  for (const [name, body] of grammar.rules) {
    const refs = new Set<string>();
    const visit = (e: Expr): void => {
      if (e.kind === 'ref') refs.add(e.rule);
      else if (e.kind === 'seq' || e.kind === 'alt') e.items.forEach(visit);
      else if (e.kind === 'repeat') visit(e.item);
    };
    visit(body);
    refsOf.set(name, refs);
  }
  const order = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const recursive = new Set<string>();
  const strongConnect = (v: string): void => {
    order.set(v, order.size);
    low.set(v, order.get(v)!);
    stack.push(v);
    onStack.add(v);
    for (const w of refsOf.get(v)!) {
      if (!order.has(w)) {
        strongConnect(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, order.get(w)!));
    }
    if (low.get(v) === order.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1 || refsOf.get(v)!.has(v)) for (const c of component) recursive.add(c);
    }
  };
  strongConnect(grammar.root);
  for (const r of grammar.shared ?? []) if (order.has(r)) recursive.add(r);
  return [grammar.root, ...[...recursive].filter((r) => r !== grammar.root).sort()];
}

// ── NFA (Thompson construction, inlining non-recursive references) ──

interface Nfa {
  eps: number[][];
  edges: Array<Array<{ set: Uint32Array; to: number }>>;
  calls: Array<Array<{ rule: number; to: number }>>;
  final: number;
}

function buildNfa(grammar: Grammar, name: string, called: ReadonlyMap<string, number>): Nfa {
  const nfa: Nfa = { eps: [], edges: [], calls: [], final: 0 };
  const state = (): number => {
    if (nfa.eps.length >= MAX_NFA_STATES) throw new InvalidArgumentError(`the grammar is too large (over ${MAX_NFA_STATES} automaton states in rule "${name}"); simplify it or lower repetition counts.`);
    nfa.eps.push([]);
    nfa.edges.push([]);
    nfa.calls.push([]);
    return nfa.eps.length - 1;
  };
  const build = (e: Expr, from: number): number => {
    switch (e.kind) {
      case 'byte': {
        const to = state();
        nfa.edges[from]!.push({ set: e.set, to });
        return to;
      }
      case 'seq':
        return e.items.reduce((at, item) => build(item, at), from);
      case 'alt': {
        const end = state();
        for (const item of e.items) {
          const start = state();
          nfa.eps[from]!.push(start);
          nfa.eps[build(item, start)]!.push(end);
        }
        return end;
      }
      case 'repeat': {
        let at = from;
        for (let i = 0; i < e.min; i++) at = build(e.item, at);
        if (e.max === Infinity) {
          const loop = state();
          nfa.eps[at]!.push(loop);
          nfa.eps[build(e.item, loop)]!.push(loop);
          return loop;
        }
        const end = state();
        for (let i = e.min; i < e.max; i++) {
          nfa.eps[at]!.push(end);
          at = build(e.item, at);
        }
        nfa.eps[at]!.push(end);
        return end;
      }
      case 'ref': {
        const rule = called.get(e.rule);
        if (rule === undefined) return build(grammar.rules.get(e.rule)!, from);
        const to = state();
        nfa.calls[from]!.push({ rule, to });
        return to;
      }
    }
  };
  const start = state();
  nfa.final = build(grammar.rules.get(name)!, start);
  return nfa;
}

// ── Subset construction per rule ──

function determinize(name: string, nfa: Nfa): RuleAutomaton {
  const ids = new Map<string, number>();
  const members: Int32Array[] = [];
  // Only states that read a byte, call, or end tell futures apart: keying on them alone merges e.g. "just after
  // the opening quote" with "after a character", which plain subset construction keeps apart.
  const important = (s: number) => nfa.edges[s]!.length > 0 || nfa.calls[s]!.length > 0 || s === nfa.final;
  // Each NFA state's closure (its important states), computed once: most targets are a single state.
  const closures = new Map<number, { set: Int32Array; key: string }>();
  function closureOf(s0: number): { set: Int32Array; key: string } {
    let c = closures.get(s0);
    if (!c) {
      const seen = new Set<number>();
      const todo = [s0];
      while (todo.length) {
        const s = todo.pop()!;
        if (seen.has(s)) continue;
        seen.add(s);
        for (const t of nfa.eps[s]!) todo.push(t);
      }
      const set = Int32Array.from([...seen].filter(important)).sort();
      closures.set(s0, (c = { set, key: set.join(',') }));
    }
    return c;
  }
  function intern(seeds: readonly number[]): number {
    let set: Int32Array;
    let key: string;
    if (seeds.length === 1) ({ set, key } = closureOf(seeds[0]!));
    else {
      const union = new Set<number>();
      for (const seed of seeds) for (const s of closureOf(seed).set) union.add(s);
      set = Int32Array.from(union).sort();
      key = set.join(',');
    }
    let id = ids.get(key);
    if (id === undefined) {
      if (members.length >= MAX_DFA_STATES) throw new InvalidArgumentError(`the grammar is too complex (over ${MAX_DFA_STATES} DFA states in rule "${name}").`);
      id = members.length;
      ids.set(key, id);
      members.push(set);
    }
    return id;
  }
  intern([0]);
  const { classOf, classesOf } = byteClasses(nfa);
  const classBytes: number[][] = [];
  for (let b = 0; b < 256; b++) (classBytes[classOf[b]!] ??= []).push(b);
  let next = new Int32Array(256 * 64);
  const accept: number[] = [];
  const calls: Array<Array<readonly [number, number]>> = [];
  for (let d = 0; d < members.length; d++) {
    const buckets: number[][] = [];
    const returns = new Map<number, number[]>();
    for (const s of members[d]!) {
      for (const { set, to } of nfa.edges[s]!) for (const c of classesOf.get(set)!) (buckets[c] ??= []).push(to);
      for (const { rule, to } of nfa.calls[s]!) returns.set(rule, [...(returns.get(rule) ?? []), to]);
    }
    if (next.length < (d + 1) * 256) {
      const grown = new Int32Array(next.length * 2);
      grown.set(next);
      next = grown;
    }
    next.fill(-1, d * 256, d * 256 + 256);
    // Classes often share their targets (all letters, say): close each distinct target list once.
    const byTargets = new Map<string | number, number>();
    for (let c = 0; c < buckets.length; c++) {
      const targets = buckets[c];
      if (!targets) continue;
      const key = targets.length === 1 ? targets[0]! : targets.join(',');
      let to = byTargets.get(key);
      if (to === undefined) byTargets.set(key, (to = intern(targets)));
      for (const b of classBytes[c]!) next[d * 256 + b] = to;
    }
    accept[d] = members[d]!.includes(nfa.final) ? 1 : 0;
    calls[d] = [...returns].map(([rule, tos]) => [rule, intern(tos)] as const);
  }
  const n = members.length;
  return {
    name,
    next: next.slice(0, n * 256),
    accept: Uint8Array.from(accept),
    hasBytes: new Uint8Array(n),
    calls,
    dist: new Float64Array(n).fill(Infinity),
  };
}

/** Bytes no edge tells apart share a class: subset construction then works per class instead of per byte. */
function byteClasses(nfa: Nfa): { classOf: Uint8Array; classesOf: Map<Uint32Array, number[]> } {
  const sets = new Set<Uint32Array>();
  for (const edges of nfa.edges) for (const { set } of edges) sets.add(set);
  let classOf = new Uint8Array(256);
  let count = 1;
  for (const set of sets) {
    // Split every class into its bytes inside and outside the set.
    const split = new Map<number, number>();
    const refined = new Uint8Array(256);
    count = 0;
    for (let b = 0; b < 256; b++) {
      const key = classOf[b]! * 2 + ((set[b >>> 5]! >>> (b & 31)) & 1);
      let c = split.get(key);
      if (c === undefined) split.set(key, (c = count++));
      refined[b] = c;
    }
    classOf = refined;
  }
  const classesOf = new Map<Uint32Array, number[]>();
  for (const set of sets) {
    const classes = new Set<number>();
    for (let b = 0; b < 256; b++) if ((set[b >>> 5]! >>> (b & 31)) & 1) classes.add(classOf[b]!);
    classesOf.set(set, [...classes]);
  }
  return { classOf, classesOf };
}

// ── Shortest completions, pruning, left recursion ──

/** Fills each rule's `dist` (fewest bytes to its end, calls costing their callee's shortest string); returns those shortest lengths. */
function computeDistances(rules: RuleAutomaton[]): number[] {
  // Reverse edges, built once per rule: byte edges (weight 1) by target, calls by return state.
  const reverse = rules.map((rule) => {
    const n = rule.accept.length;
    const seen = new Int32Array(n).fill(-1);
    const edges: Array<[number, number]> = [];
    for (let d = 0; d < n; d++) {
      for (let b = 0; b < 256; b++) {
        const t = rule.next[d * 256 + b]!;
        if (t >= 0 && seen[t] !== d) (seen[t] = d), edges.push([t, d]);
      }
    }
    const start = new Int32Array(n + 1);
    for (const [t] of edges) start[t + 1]!++;
    for (let t = 0; t < n; t++) start[t + 1] += start[t]!;
    const from = new Int32Array(edges.length);
    const fill = start.slice(0, n);
    for (const [t, d] of edges) from[fill[t]!++] = d;
    const calls: Array<Array<[number, number]>> = Array.from({ length: n }, () => []);
    for (let d = 0; d < n; d++) for (const [callee, ret] of rule.calls[d]!) calls[ret]!.push([d, callee]);
    return { start, from, calls };
  });
  const minLen = rules.map(() => Infinity);
  for (let changed = true; changed; ) {
    changed = false;
    for (let r = 0; r < rules.length; r++) {
      const rule = rules[r]!;
      const { start, from, calls } = reverse[r]!;
      const dist = rule.dist;
      dist.fill(Infinity);
      const queue: number[] = [];
      for (let d = 0; d < dist.length; d++) if (rule.accept[d]) (dist[d] = 0), queue.push(d);
      for (let i = 0; i < queue.length; i++) {
        const t = queue[i]!;
        const through = dist[t]!;
        for (let k = start[t]!; k < start[t + 1]!; k++) {
          const d = from[k]!;
          if (through + 1 < dist[d]!) (dist[d] = through + 1), queue.push(d);
        }
        for (const [d, callee] of calls[t]!) {
          if (through + minLen[callee]! < dist[d]!) (dist[d] = through + minLen[callee]!), queue.push(d);
        }
      }
      if (dist[0]! < minLen[r]!) {
        minLen[r] = dist[0]!;
        changed = true;
      }
    }
  }
  return minLen;
}

function prune(rules: RuleAutomaton[], minLen: number[]): void {
  for (const rule of rules) {
    const calls = rule.calls as Array<Array<readonly [number, number]>>;
    for (let d = 0; d < rule.accept.length; d++) {
      let any = 0;
      for (let b = 0; b < 256; b++) {
        const t = rule.next[d * 256 + b]!;
        if (t >= 0 && !Number.isFinite(rule.dist[t]!)) rule.next[d * 256 + b] = -1;
        else if (t >= 0) any = 1;
      }
      rule.hasBytes[d] = any;
      calls[d] = calls[d]!.filter(([callee, ret]) => Number.isFinite(minLen[callee]!) && Number.isFinite(rule.dist[ret]!));
    }
  }
}

/** A rule that can call itself before reading a byte would make the matcher loop: refuse it, as llama.cpp does. */
function checkLeftRecursion(rules: RuleAutomaton[], minLen: number[]): void {
  const firstCalls = rules.map((rule) => {
    const callees = new Set<number>();
    const seen = new Set<number>([0]);
    const todo = [0];
    while (todo.length) {
      const d = todo.pop()!;
      for (const [callee, ret] of rule.calls[d]!) {
        callees.add(callee);
        if (minLen[callee] === 0 && !seen.has(ret)) seen.add(ret), todo.push(ret);
      }
    }
    return callees;
  });
  const state = rules.map(() => 0); // 0 unvisited, 1 on the path, 2 done
  const visit = (r: number): void => {
    state[r] = 1;
    for (const c of firstCalls[r]!) {
      if (state[c] === 1) throw new InvalidArgumentError(`rule "${rules[c]!.name}" is left-recursive (it can reach itself without reading a character); rewrite it with repetition.`);
      if (state[c] === 0) visit(c);
    }
    state[r] = 2;
  };
  rules.forEach((_, r) => state[r] === 0 && visit(r));
}
