// The probe served by Node: `node [V8 flags] bench/workerd/probe-node.mjs PORT [engine.wasm]`.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { makeHandler } from './probe-handler.mjs';

const [port, wasm] = process.argv.slice(2);
const engine = await WebAssembly.compile(readFileSync(wasm ?? new URL('../../sdk/wasm/recyclegpt.wasm', import.meta.url)));
const handle = makeHandler(engine);
createServer(async (req, res) => {
  const response = await handle(new Request(`http://localhost${req.url}`));
  res.writeHead(response.status, { 'content-type': 'application/json' });
  res.end(await response.text());
}).listen(Number(port), '127.0.0.1', () => console.log(`probe listening on ${port}`));
