//! Portable kernels: the reference for `simd128.rs` (same names, same inputs) and
//! the native build. Plain left-to-right accumulation; the quantized SIMD128 kernels
//! give the same bits.
//!
//! Quantized dots take the activation already converted by `quant::quantize_row_q8_0`
//! (`x_scales[b]` = f16-rounded block scale, `x_qs` = 32 values in [-127, 127] per block, widened to i16); F16 dots take
//! the activation already rounded to half precision and widened back to f32, which
//! gives exactly the products of an f16 × f16 dot.

use crate::f16::{f16_to_f32, f32_to_f16};
use crate::packed::{GroupLayout, ROWS};
use crate::quant::{
    q4_extras, quantize_row_q8_0, Q8Activation, Q8ActivationMut, Q4_0_BLOCK_BYTES, Q8_0_BLOCK_BYTES, QK,
};

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

/// One raw weight row · N activations. Each block is unpacked once for all tokens;
/// every token's sum takes the same steps as a single-token call.
pub fn dot_q8_0_q8_0_tokens<const N: usize>(w: &[u8], xs: [Q8Activation; N]) -> [f32; N] {
    let blocks = w.len() / Q8_0_BLOCK_BYTES;
    dot_blocks(blocks, Q8_0_BLOCK_BYTES - 2, |b, quants| raw_block(w, b, quants), xs, unpack_q8_0)
}

pub fn dot_q4_0_q8_0_tokens<const N: usize>(w: &[u8], xs: [Q8Activation; N]) -> [f32; N] {
    let blocks = w.len() / Q4_0_BLOCK_BYTES;
    dot_blocks(blocks, Q4_0_BLOCK_BYTES - 2, |b, quants| raw_block(w, b, quants), xs, unpack_q4_0)
}

/// The `packed::ROWS` rows of one packed group · N activations: `[token][row]`, each
/// value bit-identical to the raw-row kernel on that row.
pub fn dot_q8_0_q8_0_group<const N: usize>(
    group: &[u8],
    layout: GroupLayout,
    xs: [Q8Activation; N],
) -> [[f32; ROWS]; N] {
    dot_group(group, layout, xs, unpack_q8_0)
}

pub fn dot_q4_0_q8_0_group<const N: usize>(
    group: &[u8],
    layout: GroupLayout,
    xs: [Q8Activation; N],
) -> [[f32; ROWS]; N] {
    dot_group(group, layout, xs, unpack_q4_0)
}

/// `quant::quantize_row_q8_0` into i16 values, plus the Q4_0 helpers (`quant::q4_extras`).
pub fn quantize_q8_0(x: &[f32], out: Q8ActivationMut) {
    quantize_row_q8_0(x, out.scales, out.qs);
    q4_extras(out.qs, out.sums, out.q4_mix);
}

fn unpack_q8_0(quants: &[u8], values: &mut [i32; QK]) {
    for (v, &q) in values.iter_mut().zip(quants) {
        *v = q as i8 as i32;
    }
}

fn unpack_q4_0(quants: &[u8], values: &mut [i32; QK]) {
    let (low, high) = values.split_at_mut(QK / 2);
    for (j, &byte) in quants.iter().enumerate() {
        low[j] = (byte & 15) as i32 - 8;
        high[j] = (byte >> 4) as i32 - 8;
    }
}

/// Block b of a raw row: its f16 scale bits, its quant bytes copied to `quants`.
fn raw_block(w: &[u8], b: usize, quants: &mut [u8]) -> u16 {
    let block = &w[b * (quants.len() + 2)..][..quants.len() + 2];
    quants.copy_from_slice(&block[2..]);
    u16::from_le_bytes([block[0], block[1]])
}

fn dot_group<const N: usize>(
    group: &[u8],
    layout: GroupLayout,
    xs: [Q8Activation; N],
    unpack: fn(&[u8], &mut [i32; QK]),
) -> [[f32; ROWS]; N] {
    let mut out = [[0.0; ROWS]; N];
    for lane in 0..ROWS {
        let block = |b: usize, quants: &mut [u8]| layout.block(group, b, lane, quants);
        for (t, sum) in dot_blocks(layout.blocks, layout.quant_bytes, block, xs, unpack).into_iter().enumerate() {
            out[t][lane] = sum;
        }
    }
    out
}

/// Per block: `unpack` its quant bytes (GGUF order, from `block`) into 32 integers and
/// widen its scale once, then add `Σ w·x (exact in i32) · (dw · dx)` to each token's sum,
/// blocks in order. The SIMD128 kernels take exactly these f32 steps: the same bits.
fn dot_blocks<const N: usize>(
    blocks: usize,
    quant_bytes: usize,
    block: impl Fn(usize, &mut [u8]) -> u16,
    xs: [Q8Activation; N],
    unpack: fn(&[u8], &mut [i32; QK]),
) -> [f32; N] {
    let count = xs.iter().fold(blocks, |m, x| m.min(x.scales.len()).min(x.qs.len() / QK));
    let mut sums = [0.0f32; N];
    let (mut quants, mut values) = ([0u8; QK], [0i32; QK]);
    for b in 0..count {
        let dw = f16_to_f32(block(b, &mut quants[..quant_bytes]));
        unpack(&quants[..quant_bytes], &mut values);
        for (sum, x) in sums.iter_mut().zip(&xs) {
            let sumi: i32 = values.iter().zip(&x.qs[b * QK..][..QK]).map(|(&v, &q)| v * q as i32).sum();
            *sum += sumi as f32 * (dw * x.scales[b]);
        }
    }
    sums
}

/// out[j] = rows[j·stride..][..x.len()] · x
pub fn dot_f32_rows(rows: &[f32], stride: usize, x: &[f32], out: &mut [f32]) {
    for (j, o) in out.iter_mut().enumerate() {
        *o = dot_f32(&rows[j * stride..][..x.len()], x);
    }
}

/// y += a[j] · rows[j·stride..][..y.len()] for each j in order
pub fn axpy_rows(y: &mut [f32], a: &[f32], rows: &[f32], stride: usize) {
    let n = y.len();
    for (j, &aj) in a.iter().enumerate() {
        for (yi, &r) in y.iter_mut().zip(&rows[j * stride..][..n]) {
            *yi += aj * r;
        }
    }
}

/// dst[j·width..][..width] = src[j·stride..][..width] widened from half precision (exact).
pub fn widen_f16_rows(src: &[u16], stride: usize, dst: &mut [f32], width: usize) {
    for (j, row) in dst.chunks_exact_mut(width).enumerate() {
        for (d, &h) in row.iter_mut().zip(&src[j * stride..][..width]) {
            *d = f16_to_f32(h);
        }
    }
}

/// values[i] = exp(values[i] - shift)
pub fn exp_shifted(values: &mut [f32], shift: f32) {
    for v in values {
        *v = (*v - shift).exp();
    }
}

/// Rounds each value to the nearest half (ties to even) and widens it back.
pub fn round_to_f16(values: &mut [f32]) {
    for v in values {
        *v = f16_to_f32(f32_to_f16(*v));
    }
}
