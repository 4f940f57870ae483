import { GGMLType, type WeightType } from '../ggml.js';

/**
 * WGSL that reads one weight matrix straight from its GGUF bytes, bound as `w: array<u32>`.
 * Q8_0 (34 B) and Q4_0 (18 B) blocks are only 2-byte aligned, so values are pulled out of u32 words.
 * Every variant defines `weight(row, col) -> f32` (one value) and `accumulate(...)` (a row · up to 8 activation rows),
 * reading `shape.cols` from the kernel's Shape uniform.
 */
const readers = /* wgsl */ `
fn half_at(byte: u32) -> f32 { return unpack2x16float(w[byte >> 2u])[(byte >> 1u) & 1u]; }
fn byte_at(byte: u32) -> u32 { return (w[byte >> 2u] >> ((byte & 3u) * 8u)) & 0xffu; }
// Four bytes starting at an even offset (the buffer is padded by one word so i + 1 exists).
fn word_at(byte: u32) -> u32 {
  let i = byte >> 2u;
  if ((byte & 2u) == 0u) { return w[i]; }
  return (w[i] >> 16u) | (w[i + 1u] << 16u);
}
`;

const q8_0 = /* wgsl */ `
const BLOCK_BYTES: u32 = 34u;
fn block_values(block: u32, out: ptr<function, array<f32, 32>>) {
  let base = block * BLOCK_BYTES;
  let d = half_at(base);
  for (var k = 0u; k < 8u; k++) {
    let word = word_at(base + 2u + 4u * k);
    for (var i = 0u; i < 4u; i++) {
      (*out)[4u * k + i] = d * f32(bitcast<i32>(word << (24u - 8u * i)) >> 24u);
    }
  }
}
fn weight(row: u32, col: u32) -> f32 {
  let base = (row * (shape.cols / 32u) + col / 32u) * BLOCK_BYTES;
  let q = bitcast<i32>(byte_at(base + 2u + col % 32u) << 24u) >> 24u;
  return half_at(base) * f32(q);
}
`;

const q4_0 = /* wgsl */ `
const BLOCK_BYTES: u32 = 18u;
fn block_values(block: u32, out: ptr<function, array<f32, 32>>) {
  let base = block * BLOCK_BYTES;
  let d = half_at(base);
  for (var k = 0u; k < 4u; k++) {
    let word = word_at(base + 2u + 4u * k);
    for (var i = 0u; i < 4u; i++) {
      let b = (word >> (8u * i)) & 0xffu;
      (*out)[4u * k + i] = d * (f32(b & 15u) - 8.0);
      (*out)[4u * k + i + 16u] = d * (f32(b >> 4u) - 8.0);
    }
  }
}
fn weight(row: u32, col: u32) -> f32 {
  let base = (row * (shape.cols / 32u) + col / 32u) * BLOCK_BYTES;
  let j = col % 32u;
  let b = byte_at(base + 2u + j % 16u);
  return half_at(base) * (f32(select(b & 15u, b >> 4u, j >= 16u)) - 8.0);
}
`;

const f16 = /* wgsl */ `
fn weight(row: u32, col: u32) -> f32 {
  let h = row * shape.cols + col;
  return unpack2x16float(w[h >> 1u])[h & 1u];
}
`;

const f32 = /* wgsl */ `
fn weight(row: u32, col: u32) -> f32 { return bitcast<f32>(w[row * shape.cols + col]); }
`;

/** Blocked types decode a whole 32-value block once and reuse it for every token of the batch. */
const accumulateBlocks = /* wgsl */ `
fn accumulate(row: u32, lid: u32, t0: u32, nt: u32, acc: ptr<function, array<f32, 8>>) {
  let nb = shape.cols / 32u;
  var vals: array<f32, 32>;
  for (var b = lid; b < nb; b += WG) {
    block_values(row * nb + b, &vals);
    for (var t = 0u; t < nt; t++) {
      let xo = (t0 + t) * shape.cols + b * 32u;
      var s = 0.0;
      for (var j = 0u; j < 32u; j++) { s += vals[j] * x[xo + j]; }
      (*acc)[t] += s;
    }
  }
}
`;

const accumulateValues = /* wgsl */ `
fn accumulate(row: u32, lid: u32, t0: u32, nt: u32, acc: ptr<function, array<f32, 8>>) {
  for (var c = lid; c < shape.cols; c += WG) {
    let v = weight(row, c);
    for (var t = 0u; t < nt; t++) { (*acc)[t] += v * x[(t0 + t) * shape.cols + c]; }
  }
}
`;

const access: Record<WeightType, string> = {
  [GGMLType.Q8_0]: readers + q8_0,
  [GGMLType.Q4_0]: readers + q4_0,
  [GGMLType.F16]: f16,
  [GGMLType.F32]: f32,
};

/** `weight(row, col)` for one ggml type. */
export function weightAccess(type: WeightType): string {
  return access[type];
}

/** `weight(row, col)` plus `accumulate(row, lid, t0, nt, acc)` over activations `x`. */
export function rowDot(type: WeightType): string {
  const blocked = type === GGMLType.Q8_0 || type === GGMLType.Q4_0;
  return access[type] + (blocked ? accumulateBlocks : accumulateValues);
}
