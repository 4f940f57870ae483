#!/usr/bin/env node
/** Markdown tables from device.sh's torch.json and webgpu.json, for bench/README.md. */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';

const [torchFile, webgpuFile] = process.argv.slice(2);
const torch = JSON.parse(readFileSync(torchFile, 'utf8'));
const webgpu = JSON.parse(readFileSync(webgpuFile, 'utf8'));
const f = (v, digits = 2) => (v === null || v === undefined ? '–' : v.toFixed(digits));
const device = torch.results[0]?.device ?? '?';
const adapter = webgpu.adapter ? `${webgpu.adapter.vendor} ${webgpu.adapter.architecture} ${webgpu.adapter.description}`.trim() : '?';

const lines = [
  `Greedy decoding, ${device}: PyTorch ${torch.results[0]?.torch} eager (${torch.results[0]?.dtype}, KV cache, one \`.item()\` per token) and`,
  `the SDK's WebGPU backend through Dawn in Node ${webgpu.node} (adapter: ${adapter}), on the same GGUF weights.`,
  '',
  '| model | PyTorch eager tok/s | WebGPU `off` tok/s | WebGPU ÷ PyTorch | t(2)/t(1) PyTorch | t(2)/t(1) WebGPU | head guess ÷ pass | same greedy tokens (how many) |',
  '| --- | ---: | ---: | ---: | ---: | ---: | ---: | :---: |',
];
for (const ours of webgpu.results) {
  const theirs = torch.results.find((r) => basename(r.model) === basename(ours.model));
  const off = ours.modes.find((m) => m.mode === 'off').decodeTokensPerSecond;
  const n = Math.min(theirs?.tokens.length ?? 0, ours.tokens.length);
  const same = theirs ? `${JSON.stringify(theirs.tokens.slice(0, n)) === JSON.stringify(ours.tokens.slice(0, n)) ? 'yes' : 'no'} (${n})` : '–';
  lines.push(
    `| ${basename(ours.model)} | ${f(theirs?.decodeTokensPerSecond, 1)} | ${f(off, 1)} | ${theirs ? f(off / theirs.decodeTokensPerSecond) + '×' : '–'} | ` +
      `${f(theirs?.batchRatio2)} | ${f(ours.step?.batchRatio2)} | ${f(ours.step?.headOverPass)} | ${same} |`,
  );
}
lines.push('', '| model | mode | tok/s | ÷ off | tokens per pass | acceptance | output = off |', '| --- | --- | ---: | ---: | ---: | ---: | :---: |');
for (const ours of webgpu.results) {
  for (const m of ours.modes) {
    const same = m.mode === 'off' ? '–' : m.identicalToOff ? 'yes' : 'no';
    const acceptance = m.acceptanceRate === null ? '–' : `${(100 * m.acceptanceRate).toFixed(0)}%`;
    lines.push(`| ${basename(ours.model)} | ${m.mode}${m.draftingStopped ? ' (stopped drafting)' : ''} | ${f(m.decodeTokensPerSecond, 1)} | ${f(m.overOff)}× | ${f(m.tokensPerPass)} | ${acceptance} | ${same} |`);
  }
}
console.log(lines.join('\n'));
