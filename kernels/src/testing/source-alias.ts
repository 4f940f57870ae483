import { fileURLToPath } from 'node:url';

/** '@recyclegpt/kernels' and its subpath, mapped to kernels/src: tests run the sources, the package's exports point at its build. */
export const KERNELS_SOURCE = {
  '@recyclegpt/kernels/config': fileURLToPath(new URL('../config.ts', import.meta.url)),
  '@recyclegpt/kernels': fileURLToPath(new URL('../index.ts', import.meta.url)),
};
