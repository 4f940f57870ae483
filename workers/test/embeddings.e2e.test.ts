import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDevServer, type DevServer } from './dev-server.js';

/**
 * /v1/embeddings as a user meets it: `npm start`'s script serving the demo model, the official openai client (which
 * asks for base64 unless told otherwise and decodes it), and the example we document, run as a user runs it.
 */
const root = fileURLToPath(new URL('../../', import.meta.url));

/** The documented example (`node embed.mjs` against `npm start`), word for word; the test only changes the port. */
const EMBEDDINGS_EXAMPLE = `import OpenAI from 'openai';

const client = new OpenAI({ baseURL: 'http://127.0.0.1:8787/v1', apiKey: 'not-needed-locally' });
const texts = ['The cat sat on the mat.', 'A cat was sitting on a mat.', 'import os\\nos.listdir(".")'];
const { data, usage } = await client.embeddings.create({ model: 'demo-q8_0', input: texts });
const dot = (a, b) => a.reduce((sum, x, i) => sum + x * b[i], 0); // unit vectors: the dot product is the cosine
console.log(data.length, data[0].embedding.length, usage.prompt_tokens);
console.log(dot(data[0].embedding, data[1].embedding).toFixed(3), dot(data[0].embedding, data[2].embedding).toFixed(3));
`;

let server: DevServer;
let client: OpenAI;
let persistTo: string;

beforeAll(async () => {
  persistTo = mkdtempSync(join(tmpdir(), 'recyclegpt-r2-'));
  // No --model: the demo model from models/demo, id demo-q8_0, as `npm start` serves it.
  server = await startDevServer({ persistTo });
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'not-needed-locally', maxRetries: 0 });
});

afterAll(async () => {
  await server?.stop();
  if (persistTo) rmSync(persistTo, { recursive: true, force: true });
});

describe('/v1/embeddings through the openai client against wrangler dev', () => {
  it('runs the documented example: three 256-wide vectors, the paraphrase close and the code far', () => {
    // Beside the repository's node_modules, so that `openai` resolves as in a user's project.
    const dir = join(root, '.tmp', 'embeddings-example');
    mkdirSync(dir, { recursive: true });
    const file = join(dir, 'embed.mjs');
    writeFileSync(file, EMBEDDINGS_EXAMPLE.replace('http://127.0.0.1:8787', server.url));
    const run = spawnSync(process.execPath, [file], { encoding: 'utf8', timeout: 60_000 });
    expect(run.stderr).toBe('');
    const [counts, similarities] = run.stdout.trim().split('\n');
    expect(counts).toBe('3 256 32');
    const [paraphrase, code] = similarities!.split(' ').map(Number);
    expect(paraphrase).toBeGreaterThan(0.9);
    expect(code).toBeLessThan(0.5);
  });

  it("decodes the client's default base64 to the same floats as encoding_format float", async () => {
    const input = ['The lighthouse keeper climbed the stairs', 'and lit the lamp'];
    const asBase64 = await client.embeddings.create({ model: 'demo-q8_0', input });
    const asFloat = await client.embeddings.create({ model: 'demo-q8_0', input, encoding_format: 'float' });
    expect(asBase64.data.map((d) => d.embedding)).toEqual(asFloat.data.map((d) => d.embedding));
    expect(asFloat.data.map((d) => d.index)).toEqual([0, 1]);
    expect(Math.hypot(...asFloat.data[0]!.embedding)).toBeCloseTo(1, 5);
    expect(asFloat.usage.prompt_tokens).toBeGreaterThan(input.length);
    expect(asFloat.usage.total_tokens).toBe(asFloat.usage.prompt_tokens);
  });

  it('refuses what it cannot do with typed 400s naming the field', async () => {
    const refused = (body: Record<string, unknown>) => client.embeddings.create({ model: 'demo-q8_0', input: 'x', ...body } as never).catch((e: unknown) => e);
    const dimensions = await refused({ dimensions: 64 });
    expect(dimensions).toBeInstanceOf(OpenAI.BadRequestError);
    expect(dimensions).toMatchObject({ status: 400, code: 'unsupported_parameter', param: 'dimensions' });
    expect((dimensions as Error).message).toMatch(/have 256 dimensions/);
    expect(await refused({ input: '' })).toMatchObject({ status: 400, code: 'invalid_value', param: 'input' });
    const tooLong = await refused({ input: 'word '.repeat(400) });
    expect(tooLong).toMatchObject({ status: 400, code: 'context_length_exceeded', param: 'input' });
  });
});
