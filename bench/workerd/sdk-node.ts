/** sdk-handler.ts served by Node: `node [V8 flags] --import tsx bench/workerd/sdk-node.ts PORT MODEL_DIR`. */
import { existsSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import '../../sdk/src/node.js'; // the SDK's Node entry, as users import it in Node: model files by path
import { makeSdkHandler } from './sdk-handler.js';

const [port, modelDir] = process.argv.slice(2) as [string, string];
// The engine files next to the SDK, chosen by the SDK as in any Node app.
const handle = makeSdkHandler(undefined, async (key) => (existsSync(join(modelDir, key)) ? join(modelDir, key) : undefined));
createServer(async (req, res) => {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const response = await handle(new Request(`http://localhost${req.url}`, { method: req.method, body: req.method === 'GET' ? undefined : Buffer.concat(chunks) }));
  res.writeHead(response.status, { 'content-type': 'application/json' });
  res.end(await response.text());
}).listen(Number(port), '127.0.0.1');
