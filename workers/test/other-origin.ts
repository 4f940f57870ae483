import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = fileURLToPath(new URL('../../', import.meta.url));

/**
 * A web site of its own: a page that loads the `openai` npm client, bundled for browsers, on a port apart from the
 * API's, so that a browser calling the API from it makes real cross-origin requests (preflights and all).
 * The same server answers as two origins, http://localhost:<port> and http://127.0.0.1:<port>.
 */
export interface OtherOrigin {
  port: number;
  close(): Promise<void>;
}

export async function startOtherOrigin(): Promise<OtherOrigin> {
  const bundle = await build({
    stdin: { contents: "import OpenAI from 'openai'; globalThis.OpenAI = OpenAI;", resolveDir: root, loader: 'js' },
    bundle: true,
    platform: 'browser',
    format: 'iife',
    write: false,
    logLevel: 'error',
  });
  const script = bundle.outputFiles[0]!.text;
  const page = '<!doctype html><meta charset="utf-8"><title>another site</title><script src="/openai.js"></script><p>another site</p>';
  const server: Server = createServer((req, res) => {
    const isScript = req.url === '/openai.js';
    res.writeHead(200, { 'content-type': isScript ? 'text/javascript' : 'text/html' });
    res.end(isScript ? script : page);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
