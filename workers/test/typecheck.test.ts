import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * The Worker's whole TypeScript (sources, tests, test support) against the SDK's current types. Vitest strips
 * types without checking them, so a stub that drifts from the SDK's Model would otherwise pass unnoticed.
 */
const root = fileURLToPath(new URL('../../', import.meta.url));

describe('the Worker package', () => {
  it('typechecks (tsc -p workers/tsconfig.json)', () => {
    const tsc = spawnSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(root, 'workers', 'tsconfig.json')], { encoding: 'utf8' });
    expect(tsc.stdout + tsc.stderr).toBe('');
    expect(tsc.status).toBe(0);
  });
});
