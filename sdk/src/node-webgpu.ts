/**
 * WebGPU for Node programs (the CLI, servers on GPU hosts): Node has no `navigator.gpu`, the optional `webgpu`
 * package (Dawn) provides one. Browsers and Deno need none of this.
 */

/** Gives `globalThis.navigator` a Dawn `gpu` unless one exists; returns why not when the `webgpu` package is missing. */
export async function provideNodeWebGPU(): Promise<{ release(): void } | string> {
  const host = globalThis as { navigator?: { gpu?: unknown } };
  if (host.navigator?.gpu) return { release() {} };
  let dawn: { create(options: string[]): unknown; globals: object };
  try {
    // A variable specifier, so bundlers for browsers and Workers leave the optional package alone.
    const name = 'webgpu';
    dawn = (await import(name)) as typeof dawn;
  } catch (cause) {
    return `the 'webgpu' package (Dawn for Node) could not be loaded (${(cause as Error).message.split('\n')[0]}); npm install webgpu`;
  }
  Object.assign(globalThis, dawn.globals); // GPUBufferUsage, GPUMapMode… as a browser has them
  // Node 20 has no navigator; Node 21+ has one without gpu.
  if (!host.navigator) Object.defineProperty(globalThis, 'navigator', { value: {}, configurable: true, writable: true });
  Object.defineProperty(host.navigator, 'gpu', { value: dawn.create([]), configurable: true });
  // Dawn's docs warn that a referenced GPU object can keep Node running: release() drops it.
  return { release: () => void delete (host.navigator as { gpu?: unknown }).gpu };
}
