/// <reference types="@webgpu/types" />
import { WORKGROUP_SIZE } from './wgsl/common.js';

/** What changes per forward; every kernel reads it from binding 0. */
export interface Step {
  n: number;
  pos: number;
  logitsFrom: number;
}

/** One compute dispatch, built once (pipeline + bindings) and encoded on every forward. */
export interface Dispatch {
  pipeline: GPUComputePipeline;
  bindGroup: GPUBindGroup;
  workgroups(step: Step): readonly [number, number, number];
}

/** Compiles each WGSL variant once per device. */
export class KernelCache {
  private readonly pipelines = new Map<string, GPUComputePipeline>();
  constructor(readonly device: GPUDevice) {}

  pipeline(key: string, code: () => string): GPUComputePipeline {
    let pipeline = this.pipelines.get(key);
    if (!pipeline) {
      const module = this.device.createShaderModule({ label: key, code: code() });
      pipeline = this.device.createComputePipeline({ label: key, layout: 'auto', compute: { module, entryPoint: 'main' } });
      this.pipelines.set(key, pipeline);
    }
    return pipeline;
  }

  /** Binds `buffers` to bindings 0, 1, 2… in order: the step uniform, then the kernel's shape uniform, then its storage. */
  dispatch(key: string, code: () => string, buffers: GPUBuffer[], workgroups: Dispatch['workgroups']): Dispatch {
    const pipeline = this.pipeline(key, code);
    const bindGroup = this.device.createBindGroup({
      label: key,
      layout: pipeline.getBindGroupLayout(0),
      entries: buffers.map((buffer, binding) => ({ binding, resource: { buffer } })),
    });
    return { pipeline, bindGroup, workgroups };
  }

  /** A kernel's constant shape uniform: u32 words (floats go in as bits, see f32Bits). */
  shape(words: number[]): GPUBuffer {
    const padded = new Uint32Array(Math.ceil(Math.max(words.length, 1) / 4) * 4);
    padded.set(words);
    const buffer = this.device.createBuffer({ size: padded.byteLength, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
    this.device.queue.writeBuffer(buffer, 0, padded);
    return buffer;
  }
}

const bits = new Float32Array(1);
export function f32Bits(value: number): number {
  bits[0] = value;
  return new Uint32Array(bits.buffer)[0]!;
}

const MAX_GROUPS = 65535;

/** Workgroups for `count` independent groups, wrapped into y past the 65535 per-dimension limit (WGSL flat_workgroup undoes it). */
export function grid(count: number): readonly [number, number, number] {
  const x = Math.min(Math.max(count, 1), MAX_GROUPS);
  return [x, Math.ceil(Math.max(count, 1) / x), 1];
}

/** Workgroups for one thread per item. */
export function itemGrid(items: number): readonly [number, number, number] {
  return grid(Math.ceil(items / WORKGROUP_SIZE));
}

export function encodeDispatches(pass: GPUComputePassEncoder, dispatches: readonly Dispatch[], step: Step): void {
  for (const d of dispatches) {
    pass.setPipeline(d.pipeline);
    pass.setBindGroup(0, d.bindGroup);
    const [x, y, z] = d.workgroups(step);
    pass.dispatchWorkgroups(x, y, z);
  }
}

/** The Step uniform's bytes. */
export function stepWords(step: Step): Uint32Array<ArrayBuffer> {
  return new Uint32Array([step.n, step.pos, step.logitsFrom, 0]);
}
