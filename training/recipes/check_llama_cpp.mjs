// Loads a base GGUF in llama.cpp (node-llama-cpp from tools/peers, CPU, one thread),
// checks its tokenizer against token ids expected by SentencePiece, and prints greedy continuations
// Greedy decoding should match training/model.py on the same file (the F16 demo matched token for token).
//   node training/recipes/check_llama_cpp.mjs models/demo/demo-q8_0.gguf [expected.json]
// expected.json: [{"text": "...", "ids": [...]}, ...] (written by demo.sh from the SentencePiece model)
import { readFileSync } from 'node:fs';
import { getLlama } from '../../tools/peers/node_modules/node-llama-cpp/dist/index.js';

const [modelPath, expectedPath] = process.argv.slice(2);
const llama = await getLlama({ gpu: false });
const model = await llama.loadModel({ modelPath });
let mismatches = 0;
const expected = expectedPath ? JSON.parse(readFileSync(expectedPath, 'utf8')) : [];
for (const { text, ids } of expected) {
  const got = Array.from(model.tokenize(text));
  if (JSON.stringify(got) !== JSON.stringify(ids)) {
    mismatches++;
    console.log(`tokenizer mismatch on ${JSON.stringify(text.slice(0, 60))}`);
  }
}
if (expected.length) console.log(`tokenizer: ${expected.length - mismatches}/${expected.length} texts identical to SentencePiece`);

// Plain greedy decoding from BOS + prompt (LlamaCompletion would add its own sampling defaults).
const context = await model.createContext({ contextSize: 256, threads: 1 });
const sequence = context.getSequence();
for (const prompt of ['The function returns', 'A list is', 'hacker n.', 'In this tutorial, we']) {
  const promptTokens = [model.tokens.bos, ...model.tokenize(prompt)];
  const generated = [];
  for await (const token of sequence.evaluate(promptTokens, { temperature: 0 })) {
    generated.push(token);
    if (generated.length === 40) break;
  }
  await sequence.clearHistory();
  console.log(JSON.stringify(model.detokenize([...promptTokens.slice(1), ...generated])));
}
await context.dispose();
await model.dispose();
process.exit(mismatches ? 1 : 0);
