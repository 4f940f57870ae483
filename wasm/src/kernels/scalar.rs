//! Portable kernels: the reference for `simd128.rs` (same names, same inputs) and
//! the native build. Plain left-to-right accumulation.
//!
//! Quantized dots take the activation already converted by `quant::quantize_row_q8_0`
//! (`x_scales[b]` = f16-rounded block scale, `x_qs` = 32 values in [-127, 127] per block, widened to i16); F16 dots take
//! the activation already rounded to half precision and widened back to f32, which
//! gives exactly the products of an f16 × f16 dot.

use crate::f16::f16_to_f32;
use crate::quant::{block_scale, Q4_0_BLOCK_BYTES, Q8_0_BLOCK_BYTES, QK};

pub fn dot_f32(w: &[f32], x: &[f32]) -> f32 {
    w.iter().zip(x).fold(0.0, |sum, (a, b)| sum + a * b)
}

pub fn dot_f16(w: &[u16], x: &[f32]) -> f32 {
    w.iter().zip(x).fold(0.0, |sum, (&a, b)| sum + f16_to_f32(a) * b)
}

pub fn dot_q8_0_q8_0(w: &[u8], x_scales: &[f32], x_qs: &[i16]) -> f32 {
    let blocks = w.chunks_exact(Q8_0_BLOCK_BYTES).zip(x_scales).zip(x_qs.chunks_exact(QK));
    blocks.fold(0.0, |sum, ((block, &dx), xq)| {
        let sumi: i32 = block[2..].iter().zip(xq).map(|(&q, &x)| q as i8 as i32 * x as i32).sum();
        sum + sumi as f32 * (block_scale(block) * dx)
    })
}

pub fn dot_q4_0_q8_0(w: &[u8], x_scales: &[f32], x_qs: &[i16]) -> f32 {
    let blocks = w.chunks_exact(Q4_0_BLOCK_BYTES).zip(x_scales).zip(x_qs.chunks_exact(QK));
    blocks.fold(0.0, |sum, ((block, &dx), xq)| {
        let (x_low, x_high) = xq.split_at(QK / 2);
        let mut sumi = 0i32;
        for (j, &packed) in block[2..].iter().enumerate() {
            sumi += ((packed & 15) as i32 - 8) * x_low[j] as i32;
            sumi += ((packed >> 4) as i32 - 8) * x_high[j] as i32;
        }
        sum + sumi as f32 * (block_scale(block) * dx)
    })
}

/// y += a · x
pub fn axpy_f32(y: &mut [f32], a: f32, x: &[f32]) {
    for (yi, &xi) in y.iter_mut().zip(x) {
        *yi += a * xi;
    }
}

/// y += a · x, x in half precision (f16 KV cache)
pub fn axpy_f16(y: &mut [f32], a: f32, x: &[u16]) {
    for (yi, &xi) in y.iter_mut().zip(x) {
        *yi += a * f16_to_f32(xi);
    }
}
