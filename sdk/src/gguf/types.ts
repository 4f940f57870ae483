/**
 * Metadata values as the GGUF reader returns them. Numeric arrays become typed arrays
 * (u8 → Uint8Array, i32 → Int32Array, f32 → Float32Array, u64 → BigUint64Array, …);
 * 64-bit scalars become `number` when they are safe integers, else `bigint`.
 */
export type GGUFScalar = number | bigint | boolean | string;
export type GGUFArray =
  | Uint8Array | Int8Array | Uint16Array | Int16Array | Uint32Array | Int32Array
  | Float32Array | Float64Array | BigUint64Array | BigInt64Array
  | string[] | boolean[] | GGUFValue[];
export type GGUFValue = GGUFScalar | GGUFArray;
export type GGUFMetadata = Record<string, GGUFValue>;

/** The ggml types the WASM engine runs: those of llama.cpp's F32, F16, BF16, Q8_0, Q4_0/1, Q5_0/1 and Q2_K … Q6_K (_S/_M/_L) files. */
export const GGMLType = {
  F32: 0, F16: 1, BF16: 30, Q4_0: 2, Q4_1: 3, Q5_0: 6, Q5_1: 7, Q8_0: 8, Q2_K: 10, Q3_K: 11, Q4_K: 12, Q5_K: 13, Q6_K: 14,
} as const;

export interface GGUFTensorInfo {
  name: string;
  /** ne0 first (the contiguous dimension). */
  dims: number[];
  /** ggml type id. */
  type: number;
  /** Byte offset relative to the start of the tensor data section. */
  offset: number;
  /** Bytes this tensor occupies. The reader knows every current ggml type (see ggml-types.ts) and rejects unknown type ids. */
  byteSize: number;
}

export interface GGUFHeader {
  version: number;
  metadata: GGUFMetadata;
  tensors: GGUFTensorInfo[];
  alignment: number;
  /** Absolute byte offset of the tensor data section in the file. */
  dataOffset: number;
}
