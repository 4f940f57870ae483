/**
 * ggml type ids (docs/ARCHITECTURE.md) of the weight layouts the kernels' WGSL reads. Byte sizes come with each
 * tensor from the caller (the SDK's GGUF reader), so the kernels keep no type table of their own.
 */
export const GGMLType = { F32: 0, F16: 1, Q4_0: 2, Q8_0: 8 } as const;
export type WeightType = (typeof GGMLType)[keyof typeof GGMLType];

const names: Record<WeightType, string> = { [GGMLType.F32]: 'F32', [GGMLType.F16]: 'F16', [GGMLType.Q4_0]: 'Q4_0', [GGMLType.Q8_0]: 'Q8_0' };

export function isWeightType(type: number): type is WeightType {
  return Object.prototype.hasOwnProperty.call(names, type);
}

/** The name of a layout the WGSL reads (shader labels and messages). */
export function typeName(type: WeightType): string {
  return names[type];
}
