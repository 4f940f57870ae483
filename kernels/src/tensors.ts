/// <reference types="@webgpu/types" />
import { KernelError } from './errors.js';
import type { WeightType } from './ggml.js';

/** Rows row0..row0+rows of a weight matrix, as their GGUF bytes. */
export interface WeightChunk {
  buffer: GPUBuffer;
  row0: number;
  rows: number;
}

/** A weight matrix in GPU memory, split by rows where one buffer binding cannot hold it. */
export interface GpuTensor {
  type: WeightType;
  rows: number;
  cols: number;
  chunks: WeightChunk[];
}

/** One padding word: kernels read 4 bytes at 2-byte aligned offsets, which may run 2 bytes past the data. */
const PAD_BYTES = 4;

function paddedSize(bytes: number): number {
  return Math.ceil(bytes / 4) * 4 + PAD_BYTES;
}

export interface TensorPlan {
  type: WeightType;
  rows: number;
  cols: number;
  bytesPerRow: number;
  /** Row ranges, one per GPU buffer. */
  ranges: { row0: number; rows: number }[];
}

/** Splits `rows` rows of `bytesPerRow` bytes into chunks whose padded size fits `maxBindingBytes`. */
export function planTensor(type: WeightType, rows: number, cols: number, bytesPerRow: number, maxBindingBytes: number): TensorPlan {
  const rowsPerChunk = Math.floor((maxBindingBytes - PAD_BYTES - 3) / bytesPerRow);
  if (rowsPerChunk < 1) {
    throw new KernelError('OUT_OF_MEMORY', `One row of ${bytesPerRow} bytes does not fit this GPU's ${maxBindingBytes}-byte buffer binding limit; use the wasm backend.`);
  }
  const ranges = [];
  for (let row0 = 0; row0 < rows; row0 += rowsPerChunk) ranges.push({ row0, rows: Math.min(rowsPerChunk, rows - row0) });
  return { type, rows, cols, bytesPerRow, ranges };
}

/**
 * A tensor being loaded. Its chunks are created mapped; `view` is where the caller writes the GGUF bytes:
 * the mapped memory itself when the tensor fits one buffer (no copy in JS), else a staging array copied at finish().
 */
export class PendingTensor {
  readonly tensor: GpuTensor;
  readonly view: Uint8Array;
  private readonly staging: boolean;

  constructor(device: GPUDevice, private readonly plan: TensorPlan, label: string) {
    const chunks = plan.ranges.map(({ row0, rows }) => ({
      row0,
      rows,
      buffer: device.createBuffer({ label, size: paddedSize(rows * plan.bytesPerRow), usage: GPUBufferUsage.STORAGE, mappedAtCreation: true }),
    }));
    this.tensor = { type: plan.type, rows: plan.rows, cols: plan.cols, chunks };
    const total = plan.rows * plan.bytesPerRow;
    this.staging = chunks.length > 1;
    this.view = this.staging ? new Uint8Array(total) : new Uint8Array(chunks[0]!.buffer.getMappedRange(), 0, total);
  }

  /** Uploads the bytes: unmapping hands them to the GPU. The view must not be used after this. */
  finish(): GpuTensor {
    for (const chunk of this.tensor.chunks) {
      if (this.staging) {
        const start = chunk.row0 * this.plan.bytesPerRow;
        new Uint8Array(chunk.buffer.getMappedRange()).set(this.view.subarray(start, start + chunk.rows * this.plan.bytesPerRow));
      }
      chunk.buffer.unmap();
    }
    return this.tensor;
  }
}
