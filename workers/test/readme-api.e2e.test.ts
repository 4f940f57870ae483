import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDevServer, type DevServer } from './dev-server.js';

/**
 * The README's "JSON, tool calls and embeddings over the API" examples, word for word: each ```js block is saved as
 * a .mjs file and run with node against `npm start`'s script serving the demo model (only the port differs from
 * 8787), as a reader would run them.
 */
const readme = readFileSync(fileURLToPath(new URL('../../README.md', import.meta.url)), 'utf8');
const section = readme.split('\n## JSON, tool calls and embeddings over the API\n')[1]!.split('\n## ')[0]!;
const examples = [...section.matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1]!);
// Inside the repository, so that `import 'openai'` resolves as in a user's project.
const dir = fileURLToPath(new URL('../test-artifacts/readme-api/', import.meta.url));

let server: DevServer;
let persistTo: string;

beforeAll(async () => {
  mkdirSync(dir, { recursive: true });
  persistTo = mkdtempSync(join(tmpdir(), 'recyclegpt-r2-'));
  server = await startDevServer({ persistTo });
});

afterAll(async () => {
  await server?.stop();
  if (persistTo) rmSync(persistTo, { recursive: true, force: true });
});

function run(name: string, code: string): Promise<{ status: number | null; output: string }> {
  const file = join(dir, `${name}.mjs`);
  writeFileSync(file, code.replaceAll('http://127.0.0.1:8787', server.url));
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [file], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    child.on('exit', (status) => resolve({ status, output }));
  });
}

describe("the README's API examples against npm start (demo model)", () => {
  it('has the three examples: JSON schema, a tool call and its result, embeddings', () => {
    expect(examples).toHaveLength(3);
    expect(examples[0]).toContain("type: 'json_schema'");
    expect(examples[1]).toContain("tool_choice: 'required'");
    expect(examples[2]).toContain('client.embeddings.create');
  });

  it('JSON schema: prints the parsed object', async () => {
    const { status, output } = await run('json', examples[0]!);
    expect(status, output).toBe(0);
    expect(output).toMatch(/^\{ city: .*, temperature: -?\d+ \}\n$/s);
  });

  it('tool call: a call of get_weather with a city, then an answer to its result', async () => {
    const { status, output } = await run('tools', examples[1]!);
    expect(status, output).toBe(0);
    const [first, second] = output.trim().split('\n');
    expect(first).toMatch(/^tool_calls get_weather \{ city: .* \}$/);
    expect(second).toMatch(/^(length|stop|tool_calls) /);
  });

  it('embeddings: two vectors of the model width', async () => {
    const { status, output } = await run('embeddings', examples[2]!);
    expect(status, output).toBe(0);
    expect(output).toMatch(/^2 \d+ \d+\n$/);
  });
});
