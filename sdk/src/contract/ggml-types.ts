/**
 * Every ggml tensor type a GGUF file may hold: id, name, block layout, and whether the WASM engine runs it.
 * The one table of them: the GGUF reader sizes tensors with it, the loader refuses what the engine does not run
 * by name, the Rust engine's `GgmlType` is checked against it through the ABI (test/contract.test.ts), and so is
 * training/gguf.py's table. Ids 4, 5, 31–33 and 36–38 were removed from ggml and are unknown here.
 */
export interface GGMLTypeInfo {
  id: number;
  name: string;
  /** Values per block. */
  blockSize: number;
  /** Bytes per block. */
  blockBytes: number;
  /** The WASM engine reads tensors of this type (a matrix through its kernels, a vector widened to f32). */
  engine: boolean;
}

const K = 256; // values per k-quant / i-quant super-block

// [name, id, blockSize, blockBytes, engine]
const TABLE = [
  ['F32', 0, 1, 4, true],
  ['F16', 1, 1, 2, true],
  ['Q4_0', 2, 32, 18, true],
  ['Q4_1', 3, 32, 20, true],
  ['Q5_0', 6, 32, 22, true],
  ['Q5_1', 7, 32, 24, true],
  ['Q8_0', 8, 32, 34, true],
  ['Q8_1', 9, 32, 36, false],
  ['Q2_K', 10, K, 84, true],
  ['Q3_K', 11, K, 110, true],
  ['Q4_K', 12, K, 144, true],
  ['Q5_K', 13, K, 176, true],
  ['Q6_K', 14, K, 210, true],
  ['Q8_K', 15, K, 292, false],
  ['IQ2_XXS', 16, K, 66, false],
  ['IQ2_XS', 17, K, 74, false],
  ['IQ3_XXS', 18, K, 98, false],
  ['IQ1_S', 19, K, 50, false],
  ['IQ4_NL', 20, 32, 18, false],
  ['IQ3_S', 21, K, 110, false],
  ['IQ2_S', 22, K, 82, false],
  ['IQ4_XS', 23, K, 136, false],
  ['I8', 24, 1, 1, false],
  ['I16', 25, 1, 2, false],
  ['I32', 26, 1, 4, false],
  ['I64', 27, 1, 8, false],
  ['F64', 28, 1, 8, false],
  ['IQ1_M', 29, K, 56, false],
  ['BF16', 30, 1, 2, true],
  ['TQ1_0', 34, K, 54, false],
  ['TQ2_0', 35, K, 66, false],
  ['MXFP4', 39, 32, 17, false],
  ['NVFP4', 40, 64, 36, false],
  ['Q1_0', 41, 128, 18, false],
  ['Q2_0', 42, 64, 18, false],
] as const;

type Row = (typeof TABLE)[number];
export type GGMLTypeName = Row[0];

/** Type ids by name: `GGMLType.Q4_K` is 12. */
export const GGMLType = Object.fromEntries(TABLE.map((row) => [row[0], row[1]])) as { readonly [R in Row as R[0]]: R[1] };

/** Every known type, in id order. */
export const GGML_TYPES: readonly GGMLTypeInfo[] = TABLE.map(([name, id, blockSize, blockBytes, engine]) => ({ id, name, blockSize, blockBytes, engine }));

const BY_ID = new Map(GGML_TYPES.map((t) => [t.id, t]));

/** Layout of a ggml type id, or undefined for an id no ggml version defines. */
export function ggmlTypeInfo(type: number): GGMLTypeInfo | undefined {
  return BY_ID.get(type);
}

/** "Q4_0", or "type 42" for an unknown id: for messages and summaries. */
export function ggmlTypeName(type: number): string {
  return ggmlTypeInfo(type)?.name ?? `type ${type}`;
}

/** The names of the types the WASM engine runs, for messages. */
export const ENGINE_TYPE_NAMES: readonly string[] = GGML_TYPES.filter((t) => t.engine).map((t) => t.name);
