import { defineConfig } from 'vitest/config';
import type { Reporter, TestProject, Vitest } from 'vitest/node';
import { KERNELS_SOURCE } from './kernels/src/testing/source-alias.js';
import { workersE2eProject, workersProject } from './workers/vitest.projects.js';

/**
 * Fails the run when a project's include pattern matches no file. A pattern resolved from the wrong
 * directory otherwise passes silently: the Worker tests once never ran in CI that way.
 */
class EveryPatternFindsTests implements Reporter {
  private vitest!: Vitest;

  onInit(vitest: Vitest): void {
    this.vitest = vitest;
  }

  async onTestRunStart(): Promise<void> {
    const empty: string[] = [];
    for (const project of this.vitest.projects) {
      for (const pattern of project.config.include) {
        if ((await filesMatching(project, pattern)).length === 0) empty.push(`[${project.name}] ${pattern}`);
      }
    }
    if (empty.length > 0) throw new Error(`These test patterns match no file (fix vitest.config.ts):\n  ${empty.join('\n  ')}`);
  }
}

/** The files `pattern` finds, resolved exactly as vitest resolves the project's include list. */
function filesMatching(project: TestProject, pattern: string): Promise<string[]> {
  const internal = project as unknown as { globFiles(include: string[], exclude: string[], cwd: string): Promise<string[]> };
  return internal.globFiles([pattern], project.config.exclude, project.config.dir || project.config.root);
}

// Three projects: Node-side tests, the Worker routes inside workerd, and end-to-end tests against a
// running `wrangler dev` (these need `npm run build` first, which `npm test` does).
export default defineConfig(async () => ({
  test: {
    reporters: ['default', new EveryPatternFindsTests()],
    projects: [
      {
        extends: true,
        test: {
          name: 'node',
          alias: KERNELS_SOURCE,
          include: ['sdk/src/**/*.test.ts', 'test/**/*.test.ts', 'kernels/src/**/*.test.ts', 'training/**/*.test.ts', 'bench/**/*.test.ts'],
          testTimeout: 300_000,
          hookTimeout: 300_000,
          pool: 'forks',
          // Tests import the SDK's modules directly: give them what its Node entry registers (files, WebGPU).
          setupFiles: ['sdk/src/node.ts'],
        },
      },
      await workersProject(),
      workersE2eProject,
    ],
  },
}));
