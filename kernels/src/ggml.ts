import { KernelError } from './errors.js';

/** ggml type ids (docs/ARCHITECTURE.md) of the weight layouts the kernels read. */
export const GGMLType = { F32: 0, F16: 1, Q4_0: 2, Q8_0: 8 } as const;
export type WeightType = (typeof GGMLType)[keyof typeof GGMLType];

const layouts: Record<WeightType, { name: string; blockValues: number; blockBytes: number }> = {
  [GGMLType.F32]: { name: 'F32', blockValues: 1, blockBytes: 4 },
  [GGMLType.F16]: { name: 'F16', blockValues: 1, blockBytes: 2 },
  [GGMLType.Q4_0]: { name: 'Q4_0', blockValues: 32, blockBytes: 18 },
  [GGMLType.Q8_0]: { name: 'Q8_0', blockValues: 32, blockBytes: 34 },
};

export function isWeightType(type: number): type is WeightType {
  return Object.prototype.hasOwnProperty.call(layouts, type);
}

export function typeName(type: WeightType): string {
  return layouts[type].name;
}

/** Bytes of one row of `cols` values; throws when `cols` does not fill whole blocks. */
export function rowBytes(type: number, cols: number): number {
  if (!isWeightType(type)) {
    throw new KernelError('GGUF_UNSUPPORTED', `ggml type ${type} is not supported by the WebGPU backend; use F32, F16, Q4_0 or Q8_0 weights.`);
  }
  const { blockValues, blockBytes, name } = layouts[type];
  if (cols % blockValues !== 0) {
    throw new KernelError('MODEL_INVALID', `A ${name} row must hold a multiple of ${blockValues} values, got ${cols}; the GGUF file is inconsistent.`);
  }
  return (cols / blockValues) * blockBytes;
}
