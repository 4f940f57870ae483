//! IEEE 754 half precision and bfloat16 conversions (exact, round-to-nearest-even), no tables.

/// 2^112: rebiases a half's exponent field (bias 15) placed in f32 position (bias 127).
pub const REBIAS: f32 = 5.192_297e33;

/// Largest finite half magnitude; above it (exponent field 31) are inf and NaN.
pub const MAX_FINITE: u16 = 0x7bff;

/// Shifting a sign-extended half left by 13 puts its exponent and mantissa in their f32
/// places and copies of its sign in bits 28..=31; this mask keeps only bit 31's copy.
pub const PLACED_MASK: u32 = 0x8fff_ffff;

/// Exact for all 65536 halves, by the steps the SIMD128 kernels take on four lanes at once.
pub fn f16_to_f32(h: u16) -> f32 {
    let placed = (((h as i16 as i32) << 13) as u32) & PLACED_MASK;
    if h & 0x7fff > MAX_FINITE {
        f32::from_bits(placed | 0x7f80_0000) // inf / NaN keep their payload
    } else {
        // Normals and subnormals alike: the placed bits read as an f32 (itself
        // subnormal for half subnormals) times 2^112 is exactly the half's value.
        f32::from_bits(placed) * REBIAS
    }
}

pub fn f32_to_f16(x: f32) -> u16 {
    let bits = x.to_bits();
    let sign = ((bits >> 16) & 0x8000) as u16;
    let abs = bits & 0x7fff_ffff;
    if abs > 0x7f80_0000 {
        return sign | 0x7e00 | ((abs >> 13) & 0x3ff) as u16; // NaN stays NaN
    }
    if abs >= 0x4780_0000 {
        return sign | 0x7c00; // ≥ 65536 (and inf) overflow to inf
    }
    if abs >= 0x3880_0000 {
        // Normal half: rebias exponent, round the 13 dropped mantissa bits to even.
        // A carry out of the mantissa correctly bumps the exponent (up to inf).
        let rebased = abs - (112 << 23);
        let rounded = rebased + 0xfff + ((rebased >> 13) & 1);
        return sign | (rounded >> 13) as u16;
    }
    if abs < 0x3300_0000 {
        return sign; // below 2^-25: rounds to zero
    }
    // Subnormal half: count units of 2^-24, rounding to even.
    let exponent = abs >> 23;
    let mantissa = (abs & 0x7f_ffff) | 0x80_0000;
    let shift = 126 - exponent;
    let units = mantissa >> shift;
    let rest = mantissa & ((1 << shift) - 1);
    let half = 1 << (shift - 1);
    let units = if rest > half || (rest == half && units & 1 == 1) { units + 1 } else { units };
    sign | units as u16
}

/// bfloat16 is the top half of an f32: widening is exact.
pub fn bf16_to_f32(h: u16) -> f32 {
    f32::from_bits((h as u32) << 16)
}

/// f32 to bfloat16 as ggml's `GGML_FP32_TO_BF16`: nearest, ties to even (a carry may reach
/// inf); a NaN stays NaN, quieted.
pub fn f32_to_bf16(x: f32) -> u16 {
    let bits = x.to_bits();
    if bits & 0x7fff_ffff > 0x7f80_0000 {
        return ((bits >> 16) | 64) as u16;
    }
    (bits.wrapping_add(0x7fff + ((bits >> 16) & 1)) >> 16) as u16
}

/// Rounds a vector to half precision (activations before an F16 dot, f16 KV cache).
pub fn f32_to_f16_row(src: &[f32], dst: &mut [u16]) {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = f32_to_f16(s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_half_round_trips() {
        for h in 0..=u16::MAX {
            let f = f16_to_f32(h);
            if f.is_nan() {
                assert!(f16_to_f32(f32_to_f16(f)).is_nan());
            } else {
                assert_eq!(f32_to_f16(f), h, "half {h:#06x} -> {f}");
            }
        }
    }

    /// The value a half's fields spell, computed independently in f64.
    fn decode_by_fields(h: u16) -> u32 {
        let (exponent, mantissa) = ((h >> 10) & 31, (h & 1023) as f64);
        let sign = ((h & 0x8000) as u32) << 16;
        match exponent {
            31 => sign | 0x7f80_0000 | ((h & 1023) as u32) << 13,
            0 => sign | ((mantissa * 2f64.powi(-24)) as f32).to_bits(),
            e => sign | (((1024.0 + mantissa) * 2f64.powi(e as i32 - 25)) as f32).to_bits(),
        }
    }

    #[test]
    fn every_half_widens_exactly() {
        for h in 0..=u16::MAX {
            assert_eq!(f16_to_f32(h).to_bits(), decode_by_fields(h), "half {h:#06x}");
        }
    }

    #[test]
    fn known_values() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x7bff), 65504.0);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24)); // smallest subnormal
        assert_eq!(f16_to_f32(0x03ff), 1023.0 * 2f32.powi(-24)); // largest subnormal
        assert_eq!(f16_to_f32(0x0400), 2f32.powi(-14)); // smallest normal
        assert_eq!(f16_to_f32(0x7c00), f32::INFINITY);
        assert_eq!(f16_to_f32(0xfc00), f32::NEG_INFINITY);
        assert!(f16_to_f32(0x7e00).is_nan());
        assert_eq!(f16_to_f32(0x8000).to_bits(), (-0.0f32).to_bits());
    }

    #[test]
    fn bf16_rounds_to_nearest_even_and_keeps_nan() {
        assert_eq!(f32_to_bf16(1.0), 0x3f80);
        assert_eq!(f32_to_bf16(f32::from_bits(0x3f80_8000)), 0x3f80); // tie, even stays
        assert_eq!(f32_to_bf16(f32::from_bits(0x3f81_8000)), 0x3f82); // tie, odd rounds up
        assert_eq!(f32_to_bf16(f32::from_bits(0x3f80_8001)), 0x3f81);
        assert_eq!(f32_to_bf16(f32::MAX), 0x7f80); // rounds up to inf
        assert_eq!(f32_to_bf16(f32::NEG_INFINITY), 0xff80);
        assert_eq!(f32_to_bf16(f32::from_bits(0x7f80_0001)), 0x7fc0); // signalling NaN quieted
        for h in (0..=u16::MAX).filter(|h| h & 0x7fff <= 0x7f80) {
            assert_eq!(f32_to_bf16(bf16_to_f32(h)), h);
        }
    }

    #[test]
    fn rounds_to_nearest_even() {
        assert_eq!(f32_to_f16(1.0 + 2f32.powi(-11)), 0x3c00); // tie, even stays
        assert_eq!(f32_to_f16(1.0 + 3.0 * 2f32.powi(-11)), 0x3c02); // tie, odd rounds up
        assert_eq!(f32_to_f16(65519.0), 0x7bff);
        assert_eq!(f32_to_f16(65520.0), 0x7c00); // tie at the top rounds to inf
        assert_eq!(f32_to_f16(1e10), 0x7c00);
        assert_eq!(f32_to_f16(-1e10), 0xfc00);
        assert_eq!(f32_to_f16(2f32.powi(-25)), 0x0000); // tie to even zero
        assert_eq!(f32_to_f16(1.5 * 2f32.powi(-25)), 0x0001);
        assert_eq!(f32_to_f16(1.5 * 2f32.powi(-24)), 0x0002); // subnormal tie to even
        assert_eq!(f32_to_f16(1e-10), 0x0000);
        assert_eq!(f32_to_f16(2f32.powi(-14) - 2f32.powi(-26)), 0x0400); // rounds up into normals
    }
}
