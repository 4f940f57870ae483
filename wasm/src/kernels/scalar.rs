//! Portable kernels: the reference for `simd128.rs` (same names, same inputs) and the native
//! build.
//!
//! Quantized dots take the activation already converted to the weight type's `vec_dot_type`
//! (`quant::Activation`) and follow the f32 steps of ggml's generic C kernels
//! (`ggml_vec_dot_*_generic` in `ggml-cpu/quants.c`): exact integer sums per block, then each
//! type's own f32 formula, blocks in order; the K-quants keep ggml's eight f32 lane sums. The
//! SIMD128 kernels take the same f32 steps and give the same bits. F16 / BF16 dots take the
//! activation rounded to half / bfloat16 precision and widened back, which gives exactly the
//! products of a half × half dot.

use crate::blocks::{blocks, half, Block, BlockQ4_0, BlockQ4_1, BlockQ5_0, BlockQ5_1, BlockQ8_0};
use crate::f16::{bf16_to_f32, f16_to_f32, f32_to_f16};
use crate::packed::{GroupLayout, ROWS};
use crate::quant::{
    q4_extras, quantize_row_q8_0, quantize_row_q8_k, Q8Activation, Q8ActivationMut, Q8KActivationMut, Quantizers, QK,
};

mod kquants;
pub use kquants::*;

pub const QUANTIZERS: Quantizers = Quantizers { q8: quantize_q8_0, q8_k: quantize_q8_k };

pub fn dot_f32(w: &[f32], x: &[f32]) -> f32 {
    w.iter().zip(x).fold(0.0, |sum, (a, b)| sum + a * b)
}

pub fn dot_f16(w: &[u16], x: &[f32]) -> f32 {
    w.iter().zip(x).fold(0.0, |sum, (&a, b)| sum + f16_to_f32(a) * b)
}

/// Eight running sums (element i into sum i % 8), then ((s0+s4) + (s2+s6)) + ((s1+s5) + (s3+s7))
/// and the tail past the last 8 in order: the order of the SIMD128 twin's two f32x4 accumulators.
pub fn dot_bf16(w: &[u16], x: &[f32]) -> f32 {
    let n = w.len().min(x.len());
    let body = n - n % 8;
    let mut acc = [0.0f32; 8];
    for (w, x) in w[..body].chunks_exact(8).zip(x[..body].chunks_exact(8)) {
        for l in 0..8 {
            acc[l] += bf16_to_f32(w[l]) * x[l];
        }
    }
    let v: [f32; 4] = std::array::from_fn(|l| acc[l] + acc[l + 4]);
    let tail = w[body..n].iter().zip(&x[body..n]).fold(0.0, |s, (&a, b)| s + bf16_to_f32(a) * b);
    ((v[0] + v[2]) + (v[1] + v[3])) + tail
}

/// `quant::quantize_row_q8_0` into i16 values, plus the Q4_0 helpers (`quant::q4_extras`).
pub fn quantize_q8_0(x: &[f32], out: Q8ActivationMut) {
    quantize_row_q8_0(x, out.scales, out.q8_1_s, out.qs);
    q4_extras(out.qs, out.sums, out.q4_mix);
}

pub fn quantize_q8_k(x: &[f32], out: Q8KActivationMut) {
    quantize_row_q8_k(x, out.d, out.qs, out.bsums);
}

// ---- Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 · Q8_0 / Q8_1: blocks of 32 ----

/// What a 32-block type needs from its blocks: its 32 weights as integers and, from a block's
/// exact Σ w·q with one token, the f32 term ggml's generic kernel adds for it.
pub(super) trait Block32: Block + Copy {
    fn unpack(&self, values: &mut [i32; QK]);
    fn term(&self, sumi: i32, x: &Q8Activation, b: usize) -> f32;
}

impl Block32 for BlockQ4_0 {
    fn unpack(&self, values: &mut [i32; QK]) {
        for (j, &q) in self.qs.iter().enumerate() {
            values[j] = (q & 15) as i32 - 8;
            values[j + 16] = (q >> 4) as i32 - 8;
        }
    }
    fn term(&self, sumi: i32, x: &Q8Activation, b: usize) -> f32 {
        sumi as f32 * half(self.d) * x.scales[b]
    }
}

impl Block32 for BlockQ4_1 {
    fn unpack(&self, values: &mut [i32; QK]) {
        for (j, &q) in self.qs.iter().enumerate() {
            values[j] = (q & 15) as i32;
            values[j + 16] = (q >> 4) as i32;
        }
    }
    fn term(&self, sumi: i32, x: &Q8Activation, b: usize) -> f32 {
        (half(self.d) * x.scales[b]) * sumi as f32 + half(self.m) * x.q8_1_s[b]
    }
}

/// The 32 values of a Q5 block, 0..=31.
fn unpack_q5(qh: [u8; 4], qs: &[u8; 16], offset: i32, values: &mut [i32; QK]) {
    let qh = u32::from_le_bytes(qh);
    for (j, &q) in qs.iter().enumerate() {
        values[j] = ((q & 15) as u32 | ((qh >> j) & 1) << 4) as i32 - offset;
        values[j + 16] = ((q >> 4) as u32 | ((qh >> (j + 16)) & 1) << 4) as i32 - offset;
    }
}

impl Block32 for BlockQ5_0 {
    fn unpack(&self, values: &mut [i32; QK]) {
        unpack_q5(self.qh, &self.qs, 16, values);
    }
    fn term(&self, sumi: i32, x: &Q8Activation, b: usize) -> f32 {
        (half(self.d) * x.scales[b]) * sumi as f32
    }
}

impl Block32 for BlockQ5_1 {
    fn unpack(&self, values: &mut [i32; QK]) {
        unpack_q5(self.qh, &self.qs, 0, values);
    }
    fn term(&self, sumi: i32, x: &Q8Activation, b: usize) -> f32 {
        (half(self.d) * x.scales[b]) * sumi as f32 + half(self.m) * x.q8_1_s[b]
    }
}

impl Block32 for BlockQ8_0 {
    fn unpack(&self, values: &mut [i32; QK]) {
        for (v, &q) in values.iter_mut().zip(&self.qs) {
            *v = q as i8 as i32;
        }
    }
    fn term(&self, sumi: i32, x: &Q8Activation, b: usize) -> f32 {
        sumi as f32 * (half(self.d) * x.scales[b])
    }
}

/// Blocks `block(0..count)` · N activations: per block the weights are unpacked once for every
/// token, whose exact Σ w·q becomes the block's term, added to that token's sum in block order.
fn dot_blocks<B: Block32, const N: usize>(count: usize, mut block: impl FnMut(usize) -> B, xs: [Q8Activation; N]) -> [f32; N] {
    let count = xs.iter().fold(count, |m, x| m.min(x.scales.len()).min(x.q8_1_s.len()).min(x.qs.len() / QK));
    let mut sums = [0.0f32; N];
    let mut values = [0i32; QK];
    for b in 0..count {
        let block = block(b);
        block.unpack(&mut values);
        for (sum, x) in sums.iter_mut().zip(&xs) {
            let sumi: i32 = values.iter().zip(&x.qs[b * QK..][..QK]).map(|(&v, &q)| v * q as i32).sum();
            *sum += block.term(sumi, x, b);
        }
    }
    sums
}

/// One raw weight row · N activations.
fn dot_row<B: Block32, const N: usize>(w: &[u8], xs: [Q8Activation; N]) -> [f32; N] {
    let row = blocks::<B>(w);
    dot_blocks(row.len(), |b| row[b], xs)
}

pub fn dot_q4_0_q8_0_tokens<const N: usize>(w: &[u8], xs: [Q8Activation; N]) -> [f32; N] {
    dot_row::<BlockQ4_0, N>(w, xs)
}

pub fn dot_q4_1_q8_1_tokens<const N: usize>(w: &[u8], xs: [Q8Activation; N]) -> [f32; N] {
    dot_row::<BlockQ4_1, N>(w, xs)
}

pub fn dot_q5_0_q8_0_tokens<const N: usize>(w: &[u8], xs: [Q8Activation; N]) -> [f32; N] {
    dot_row::<BlockQ5_0, N>(w, xs)
}

pub fn dot_q5_1_q8_1_tokens<const N: usize>(w: &[u8], xs: [Q8Activation; N]) -> [f32; N] {
    dot_row::<BlockQ5_1, N>(w, xs)
}

pub fn dot_q8_0_q8_0_tokens<const N: usize>(w: &[u8], xs: [Q8Activation; N]) -> [f32; N] {
    dot_row::<BlockQ8_0, N>(w, xs)
}

/// The `packed::ROWS` rows of one packed group · N activations: `[token][row]`, each
/// value bit-identical to the raw-row kernel on that row.
fn dot_group<B: Block32, const N: usize>(group: &[u8], layout: GroupLayout, xs: [Q8Activation; N]) -> [[f32; ROWS]; N] {
    let mut out = [[0.0; ROWS]; N];
    let mut raw = [0u8; 64];
    for lane in 0..ROWS {
        let block = |b| {
            layout.block(group, b, lane, &mut raw);
            blocks::<B>(&raw)[0]
        };
        for (t, sum) in dot_blocks(layout.blocks, block, xs).into_iter().enumerate() {
            out[t][lane] = sum;
        }
    }
    out
}

pub fn dot_q8_0_q8_0_group<const N: usize>(g: &[u8], layout: GroupLayout, xs: [Q8Activation; N]) -> [[f32; ROWS]; N] {
    dot_group::<BlockQ8_0, N>(g, layout, xs)
}

pub fn dot_q4_0_q8_0_group<const N: usize>(g: &[u8], layout: GroupLayout, xs: [Q8Activation; N]) -> [[f32; ROWS]; N] {
    dot_group::<BlockQ4_0, N>(g, layout, xs)
}

pub fn dot_q4_1_q8_1_group<const N: usize>(g: &[u8], layout: GroupLayout, xs: [Q8Activation; N]) -> [[f32; ROWS]; N] {
    dot_group::<BlockQ4_1, N>(g, layout, xs)
}

pub fn dot_q5_0_q8_0_group<const N: usize>(g: &[u8], layout: GroupLayout, xs: [Q8Activation; N]) -> [[f32; ROWS]; N] {
    dot_group::<BlockQ5_0, N>(g, layout, xs)
}

pub fn dot_q5_1_q8_1_group<const N: usize>(g: &[u8], layout: GroupLayout, xs: [Q8Activation; N]) -> [[f32; ROWS]; N] {
    dot_group::<BlockQ5_1, N>(g, layout, xs)
}

// ---- attention and cache helpers ----

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

/// gate[i] = silu(gate[i]) · up[i], silu(g) = g / (1 + exp(-g)): SwiGLU's product.
pub fn silu_mul(gate: &mut [f32], up: &[f32]) {
    for (g, &u) in gate.iter_mut().zip(up) {
        *g = *g / (1.0 + (-*g).exp()) * u;
    }
}

/// Rounds each value to the nearest half (ties to even) and widens it back.
pub fn round_to_f16(values: &mut [f32]) {
    for v in values {
        *v = f16_to_f32(f32_to_f16(*v));
    }
}
