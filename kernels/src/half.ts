/** IEEE half ⇄ f32 conversions (Node 20 has no Math.f16round). Round to nearest even, as hardware does. */
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const mantissa = h & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 31) return mantissa ? NaN : sign * Infinity;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

export function floatToHalf(value: number): number {
  f32[0] = value;
  const bits = u32[0]!;
  const sign = (bits >>> 16) & 0x8000;
  const exponent = (bits >>> 23) & 0xff;
  let mantissa = bits & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa ? 0x200 : 0);
  const e = exponent - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    // Subnormal half: shift the mantissa (with its implicit 1) right and round to nearest even.
    mantissa |= 0x800000;
    const shift = 14 - e;
    const rounded = mantissa >>> shift;
    const rest = mantissa & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    return sign | (rounded + (rest > halfway || (rest === halfway && rounded & 1) ? 1 : 0));
  }
  const rest = mantissa & 0x1fff;
  let result = sign | (e << 10) | (mantissa >>> 13);
  // A carry out of the mantissa correctly bumps the exponent (up to infinity).
  if (rest > 0x1000 || (rest === 0x1000 && result & 1)) result += 1;
  return result;
}

/** The value a f32 takes once stored as f16. */
export function roundToHalf(value: number): number {
  return halfToFloat(floatToHalf(value));
}
