/**
 * Block layouts of the ggml tensor types, by type id: `blockSize` elements take `blockBytes` bytes.
 * The engine runs only F32/F16/Q4_0/Q8_0, but knowing every common type lets the reader size,
 * validate and describe any GGUF file, so the engine can refuse a type by name later.
 * Ids 4, 5 and 31–33, 36–38 were removed from ggml and are unknown here.
 */
export interface GGMLTypeInfo {
  name: string;
  blockSize: number;
  blockBytes: number;
}

const K = 256; // elements per k-quant / i-quant super-block

const TYPES: Record<number, GGMLTypeInfo> = {
  0: { name: 'F32', blockSize: 1, blockBytes: 4 },
  1: { name: 'F16', blockSize: 1, blockBytes: 2 },
  2: { name: 'Q4_0', blockSize: 32, blockBytes: 18 },
  3: { name: 'Q4_1', blockSize: 32, blockBytes: 20 },
  6: { name: 'Q5_0', blockSize: 32, blockBytes: 22 },
  7: { name: 'Q5_1', blockSize: 32, blockBytes: 24 },
  8: { name: 'Q8_0', blockSize: 32, blockBytes: 34 },
  9: { name: 'Q8_1', blockSize: 32, blockBytes: 36 },
  10: { name: 'Q2_K', blockSize: K, blockBytes: 84 },
  11: { name: 'Q3_K', blockSize: K, blockBytes: 110 },
  12: { name: 'Q4_K', blockSize: K, blockBytes: 144 },
  13: { name: 'Q5_K', blockSize: K, blockBytes: 176 },
  14: { name: 'Q6_K', blockSize: K, blockBytes: 210 },
  15: { name: 'Q8_K', blockSize: K, blockBytes: 292 },
  16: { name: 'IQ2_XXS', blockSize: K, blockBytes: 66 },
  17: { name: 'IQ2_XS', blockSize: K, blockBytes: 74 },
  18: { name: 'IQ3_XXS', blockSize: K, blockBytes: 98 },
  19: { name: 'IQ1_S', blockSize: K, blockBytes: 50 },
  20: { name: 'IQ4_NL', blockSize: 32, blockBytes: 18 },
  21: { name: 'IQ3_S', blockSize: K, blockBytes: 110 },
  22: { name: 'IQ2_S', blockSize: K, blockBytes: 82 },
  23: { name: 'IQ4_XS', blockSize: K, blockBytes: 136 },
  24: { name: 'I8', blockSize: 1, blockBytes: 1 },
  25: { name: 'I16', blockSize: 1, blockBytes: 2 },
  26: { name: 'I32', blockSize: 1, blockBytes: 4 },
  27: { name: 'I64', blockSize: 1, blockBytes: 8 },
  28: { name: 'F64', blockSize: 1, blockBytes: 8 },
  29: { name: 'IQ1_M', blockSize: K, blockBytes: 56 },
  30: { name: 'BF16', blockSize: 1, blockBytes: 2 },
  34: { name: 'TQ1_0', blockSize: K, blockBytes: 54 },
  35: { name: 'TQ2_0', blockSize: K, blockBytes: 66 },
  39: { name: 'MXFP4', blockSize: 32, blockBytes: 17 },
};

/** Layout of a ggml type id, or undefined for an id this reader does not know. */
export function ggmlTypeInfo(type: number): GGMLTypeInfo | undefined {
  return Object.prototype.hasOwnProperty.call(TYPES, type) ? TYPES[type] : undefined;
}

/** "Q4_0", or "type 42" for an unknown id: for messages and summaries. */
export function ggmlTypeName(type: number): string {
  return ggmlTypeInfo(type)?.name ?? `type ${type}`;
}
