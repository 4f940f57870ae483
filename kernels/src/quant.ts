import { GGMLType, type WeightType } from './ggml.js';
import { floatToHalf, halfToFloat } from './half.js';

/** GGUF bytes of `values` (rows × cols, row-major) in a ggml type, quantized as llama.cpp's reference quantizers do. */
export function quantize(type: WeightType, values: Float32Array, cols: number): Uint8Array {
  const bytesPerValue = { [GGMLType.F32]: 4, [GGMLType.F16]: 2, [GGMLType.Q8_0]: 34 / 32, [GGMLType.Q4_0]: 18 / 32 }[type];
  const out = new Uint8Array(values.length * bytesPerValue);
  const view = new DataView(out.buffer);
  if (type === GGMLType.F32) new Float32Array(out.buffer).set(values);
  if (type === GGMLType.F16) values.forEach((v, i) => view.setUint16(2 * i, floatToHalf(v), true));
  if (type === GGMLType.Q8_0 || type === GGMLType.Q4_0) {
    const blockBytes = type === GGMLType.Q8_0 ? 34 : 18;
    for (let b = 0; b < values.length / 32; b++) {
      const block = values.subarray(32 * b, 32 * b + 32);
      const o = b * blockBytes;
      if (type === GGMLType.Q8_0) {
        const amax = block.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
        const d = amax / 127;
        view.setUint16(o, floatToHalf(d), true);
        block.forEach((v, j) => view.setInt8(o + 2 + j, d ? Math.round(v / d) : 0));
      } else {
        // The value of largest magnitude maps to -8, keeping its sign in d.
        const max = block.reduce((m, v) => (Math.abs(v) > Math.abs(m) ? v : m), 0);
        const d = max / -8;
        const id = d ? 1 / d : 0;
        const q = (v: number): number => Math.min(15, Math.trunc(v * id + 8.5));
        view.setUint16(o, floatToHalf(d), true);
        for (let j = 0; j < 16; j++) out[o + 2 + j] = q(block[j]!) | (q(block[j + 16]!) << 4);
      }
    }
  }
  return out;
}

/** f32 values of GGUF bytes (rows × cols) as the GGUF layouts define them. */
export function dequantize(type: WeightType, bytes: Uint8Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < out.length; i++) {
    if (type === GGMLType.F32) out[i] = view.getFloat32(4 * i, true);
    else if (type === GGMLType.F16) out[i] = halfToFloat(view.getUint16(2 * i, true));
    else {
      const blockBytes = type === GGMLType.Q8_0 ? 34 : 18;
      const o = Math.floor(i / 32) * blockBytes;
      const j = i % 32;
      const d = halfToFloat(view.getUint16(o, true));
      out[i] = type === GGMLType.Q8_0 ? d * view.getInt8(o + 2 + j) : d * (((bytes[o + 2 + (j % 16)]! >> (j < 16 ? 0 : 4)) & 15) - 8);
    }
  }
  return out;
}
