/// <reference types="@webgpu/types" />
import { encodeDispatches, KernelCache, stepWords, type Dispatch, type Step } from '../gpu.js';

/** Runs single kernels on test data: uploads arrays, encodes dispatches, reads results back. */
export class KernelRunner {
  readonly kernels: KernelCache;
  readonly step: GPUBuffer;

  constructor(readonly device: GPUDevice) {
    this.kernels = new KernelCache(device);
    this.step = device.createBuffer({ size: 16, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
  }

  /** A storage buffer holding `data`, padded by a word as weight buffers are. */
  buffer(data: ArrayBufferView | number): GPUBuffer {
    const bytes = typeof data === 'number' ? data * 4 : data.byteLength;
    const buffer = this.device.createBuffer({
      size: Math.ceil(bytes / 4) * 4 + 4,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
      mappedAtCreation: true,
    });
    if (typeof data !== 'number') new Uint8Array(buffer.getMappedRange()).set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    buffer.unmap();
    return buffer;
  }

  run(dispatches: Dispatch[], step: Step): void {
    this.device.queue.writeBuffer(this.step, 0, stepWords(step));
    const encoder = this.device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    encodeDispatches(pass, dispatches, step);
    pass.end();
    this.device.queue.submit([encoder.finish()]);
  }

  async read(buffer: GPUBuffer, count: number): Promise<ArrayBuffer> {
    const staging = this.device.createBuffer({ size: count * 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    const encoder = this.device.createCommandEncoder();
    encoder.copyBufferToBuffer(buffer, 0, staging, 0, count * 4);
    this.device.queue.submit([encoder.finish()]);
    await staging.mapAsync(GPUMapMode.READ);
    const copy = staging.getMappedRange().slice(0);
    staging.destroy();
    return copy;
  }

  async floats(buffer: GPUBuffer, count: number): Promise<Float32Array> {
    return new Float32Array(await this.read(buffer, count));
  }
}
