//! Portable kernels: the reference for `simd128.rs` (same names, same inputs) and
//! the native build. Plain left-to-right accumulation.
//!
//! Quantized dots take the activation already converted by `quant::quantize_row_q8_0`
//! (`x_scales[b]` = f16-rounded block scale, `x_qs` = 32 values in [-127, 127] per block, widened to i16); F16 dots take
//! the activation already rounded to half precision and widened back to f32, which
//! gives exactly the products of an f16 × f16 dot.

use crate::f16::f16_to_f32;
use crate::quant::{block_scale, Q8Activation, Q4_0_BLOCK_BYTES, Q8_0_BLOCK_BYTES, QK};

pub fn dot_f32(w: &[f32], x: &[f32]) -> f32 {
    w.iter().zip(x).fold(0.0, |sum, (a, b)| sum + a * b)
}

pub fn dot_f16(w: &[u16], x: &[f32]) -> f32 {
    w.iter().zip(x).fold(0.0, |sum, (&a, b)| sum + f16_to_f32(a) * b)
}

pub fn dot_q8_0_q8_0(w: &[u8], x: Q8Activation) -> f32 {
    dot_q8_0_q8_0_tokens(w, [x])[0]
}

pub fn dot_q4_0_q8_0(w: &[u8], x: Q8Activation) -> f32 {
    dot_q4_0_q8_0_tokens(w, [x])[0]
}

/// One weight row · N activations. Each block is unpacked once for all tokens;
/// every token's sum takes the same steps as a single-token call.
pub fn dot_q8_0_q8_0_tokens<const N: usize>(w: &[u8], xs: [Q8Activation; N]) -> [f32; N] {
    dot_blocks(w, Q8_0_BLOCK_BYTES, xs, |packed, values| {
        for (v, &q) in values.iter_mut().zip(packed) {
            *v = q as i8 as i32;
        }
    })
}

pub fn dot_q4_0_q8_0_tokens<const N: usize>(w: &[u8], xs: [Q8Activation; N]) -> [f32; N] {
    dot_blocks(w, Q4_0_BLOCK_BYTES, xs, |packed, values| {
        let (low, high) = values.split_at_mut(QK / 2);
        for (j, &byte) in packed.iter().enumerate() {
            low[j] = (byte & 15) as i32 - 8;
            high[j] = (byte >> 4) as i32 - 8;
        }
    })
}

/// Per block: `unpack` its packed bytes into 32 integers and widen its scale once, then
/// add `Σ w·x (exact in i32) · (dw · dx)` to each token's sum, blocks in order.
#[inline(always)]
fn dot_blocks<const N: usize>(
    w: &[u8],
    block_bytes: usize,
    xs: [Q8Activation; N],
    unpack: impl Fn(&[u8], &mut [i32; QK]),
) -> [f32; N] {
    let blocks = xs.iter().fold(w.len() / block_bytes, |m, x| m.min(x.scales.len()).min(x.qs.len() / QK));
    let mut sums = [0.0f32; N];
    let mut values = [0i32; QK];
    for (b, block) in w.chunks_exact(block_bytes).take(blocks).enumerate() {
        unpack(&block[2..], &mut values);
        let dw = block_scale(block);
        for (sum, x) in sums.iter_mut().zip(&xs) {
            let sumi: i32 = values.iter().zip(&x.qs[b * QK..][..QK]).map(|(&v, &q)| v * q as i32).sum();
            *sum += sumi as f32 * (dw * x.scales[b]);
        }
    }
    sums
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
