// The x86-64 code V8 generated for one wasm function, from `node --print-wasm-code` output: its
// instruction count, the body of its innermost loop (between a backward jump and its target) and a
// mnemonic histogram. node wasm/perf/machine-code.mjs CODE.txt NAME-SUBSTRING [--listing]
import { readFileSync } from 'node:fs';

const [file, name] = process.argv.slice(2);
const text = readFileSync(file, 'utf8');
const at = text.split('\n--- WebAssembly code ---').find((b) => b.includes(`name: `) && b.split('\n').find((l) => l.startsWith('name:')).includes(name));
if (!at) throw new Error(`no function named like ${name}`);
const lines = at.split('\n').filter((l) => /^0x[0-9a-f]+\s+[0-9a-f]+\s+[0-9a-f]+\s+/.test(l));
const code = lines.map((l) => {
  const [, offset, , ...rest] = l.trim().split(/\s+/);
  return { offset: parseInt(offset, 16), text: rest.join(' ') };
});
const backward = [];
// V8 prints jumps as "jnz 0x… <+0x1a2>"; take the <+offset>.
code.forEach((c, i) => {
  const m = /^j\w+\s+.*<\+0x([0-9a-f]+)>/.exec(c.text);
  if (m) {
    const target = parseInt(m[1], 16);
    if (target < c.offset) backward.push({ start: code.findIndex((x) => x.offset === target), end: i });
  }
});
console.log(`${code.length} instructions; loops (start..end, size): ${backward.map((b) => `${b.start}..${b.end} (${b.end - b.start + 1})`).join(', ')}`);
const inner = backward.sort((a, b) => a.end - a.start - (b.end - b.start))[0];
if (inner) {
  const body = code.slice(inner.start, inner.end + 1);
  const histogram = {};
  for (const c of body) {
    const op = c.text.replace(/^REX\.W /, '').split(' ')[0];
    histogram[op] = (histogram[op] ?? 0) + 1;
  }
  console.log(`innermost loop: ${body.length} instructions`);
  console.log(Object.entries(histogram).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${v} ${k}`).join(', '));
  if (process.argv.includes('--listing')) for (const c of body) console.log(c.text);
}
