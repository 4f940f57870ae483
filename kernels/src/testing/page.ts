/// <reference types="@webgpu/types" />
import { cases, type Check } from './cases.js';

/** Entry point bundled for the test page: window.harness runs one named case on this page's WebGPU device. */
let device: Promise<GPUDevice | string> | undefined;

function getDevice(): Promise<GPUDevice | string> {
  device ??= (async () => {
    if (!navigator.gpu) return 'navigator.gpu is missing (WebGPU disabled in this browser)';
    const adapter = await navigator.gpu.requestAdapter();
    if (!adapter) return 'navigator.gpu.requestAdapter() returned null (no WebGPU adapter)';
    const d = await adapter.requestDevice();
    d.addEventListener('uncapturederror', (e) => console.error(`WebGPU error: ${(e as GPUUncapturedErrorEvent).error.message}`));
    return d;
  })();
  return device;
}

async function run(name: string): Promise<Check[]> {
  const d = await getDevice();
  if (typeof d === 'string') throw new Error(d);
  const run = cases[name];
  if (!run) throw new Error(`unknown case ${name}`);
  return run(d);
}

/** null when WebGPU works here, else why not. */
async function unavailable(): Promise<string | null> {
  const d = await getDevice();
  return typeof d === 'string' ? d : null;
}

Object.assign(globalThis, { harness: { run, unavailable } });
