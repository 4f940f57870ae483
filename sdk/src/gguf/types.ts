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

export interface GGUFTensorInfo {
  name: string;
  /** ne0 first (the contiguous dimension). */
  dims: number[];
  /** ggml type id. */
  type: number;
  /** Byte offset relative to the start of the tensor data section. */
  offset: number;
  /** Bytes this tensor occupies. The reader knows every current ggml type (see sdk/src/contract/ggml-types.ts) and rejects unknown type ids. */
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
