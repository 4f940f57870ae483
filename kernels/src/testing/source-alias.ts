import { fileURLToPath } from 'node:url';

/** '@recyclegpt/kernels' mapped to kernels/src: tests run the sources, the package's exports point at its build. */
export const KERNELS_SOURCE = {
  '@recyclegpt/kernels': fileURLToPath(new URL('../index.ts', import.meta.url)),
};
