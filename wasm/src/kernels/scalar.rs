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

use crate::blocks::{
    blocks, half, q6, scales_and_mins, Block, BlockQ2K, BlockQ3K, BlockQ4K, BlockQ4_0, BlockQ4_1, BlockQ5K, BlockQ5_0,
    BlockQ5_1, BlockQ6K, BlockQ8_0,
};
use crate::f16::{bf16_to_f32, f16_to_f32, f32_to_f16};
use crate::packed::{GroupLayout, ROWS};
use crate::quant::{
    q4_extras, q8_k_position, quantize_row_q8_0, quantize_row_q8_k, Q8Activation, Q8ActivationMut, Q8KActivation,
    Q8KActivationMut, Quantizers, QK, QK_K,
};

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
fn dot_blocks<B: Block32, const N: usize>(count: usize, block: impl Fn(usize) -> B, xs: [Q8Activation; N]) -> [f32; N] {
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
pub fn dot_q8_0_q8_0_group<const N: usize>(
    group: &[u8],
    layout: GroupLayout,
    xs: [Q8Activation; N],
) -> [[f32; ROWS]; N] {
    dot_group(layout, xs, |b, lane| {
        let mut block = BlockQ8_0 { d: [0; 2], qs: [0; 32] };
        block.d = layout.block(group, b, lane, &mut block.qs).to_le_bytes();
        block
    })
}

pub fn dot_q4_0_q8_0_group<const N: usize>(
    group: &[u8],
    layout: GroupLayout,
    xs: [Q8Activation; N],
) -> [[f32; ROWS]; N] {
    dot_group(layout, xs, |b, lane| {
        let mut block = BlockQ4_0 { d: [0; 2], qs: [0; 16] };
        block.d = layout.block(group, b, lane, &mut block.qs).to_le_bytes();
        block
    })
}

fn dot_group<B: Block32, const N: usize>(
    layout: GroupLayout,
    xs: [Q8Activation; N],
    block: impl Fn(usize, usize) -> B,
) -> [[f32; ROWS]; N] {
    let mut out = [[0.0; ROWS]; N];
    for lane in 0..ROWS {
        for (t, sum) in dot_blocks(layout.blocks, |b| block(b, lane), xs).into_iter().enumerate() {
            out[t][lane] = sum;
        }
    }
    out
}

// ---- Q2_K .. Q6_K · Q8_K: super-blocks of 256 ----

/// ggml's generic K-quant kernels keep eight i32 lane sums per super-block (element e into lane
/// e % 8) of scale(e) · w(e) · q(e), and eight f32 sums across super-blocks of d · lane. `q` is
/// the super-block's activation values (in `q8_k_position` order).
fn lane_sums(values: &[i32; QK_K], scale: impl Fn(usize) -> i32, q: &[i16]) -> [i32; 8] {
    let mut lanes = [0i32; 8];
    for (e, &v) in values.iter().enumerate() {
        lanes[e % 8] += scale(e) * (v * q[q8_k_position(e)] as i32);
    }
    lanes
}

/// Super-blocks of one raw row · N activations: `block_sums` gives a super-block's eight lane
/// sums with one token and the f32 that token's running sum loses (Q4_K / Q5_K's mins; 0
/// otherwise); the lanes are scaled by d·dx into eight f32 sums, added to that running sum last.
fn dot_k_lanes<B: Block, const N: usize>(
    w: &[u8],
    xs: [Q8KActivation; N],
    values: impl Fn(&B, &mut [i32; QK_K]),
    block_sums: impl Fn(&B, &[i32; QK_K], &Q8KActivation, usize) -> ([i32; 8], f32),
    d: impl Fn(&B) -> f32,
) -> [f32; N] {
    let row = blocks::<B>(w);
    let count = xs.iter().fold(row.len(), |m, x| m.min(x.d.len()).min(x.qs.len() / QK_K).min(x.bsums.len() / 16));
    let (mut lanes, mut sums) = ([[0.0f32; 8]; N], [0.0f32; N]);
    let mut unpacked = [0i32; QK_K];
    for (b, block) in row[..count].iter().enumerate() {
        values(block, &mut unpacked);
        for t in 0..N {
            let (aux, minus) = block_sums(block, &unpacked, &xs[t], b);
            let scale = d(block) * xs[t].d[b];
            for l in 0..8 {
                lanes[t][l] += scale * aux[l] as f32;
            }
            sums[t] -= minus;
        }
    }
    std::array::from_fn(|t| lanes[t].iter().fold(sums[t], |s, &l| s + l))
}

/// Q4_K / Q5_K's min term for super-block b: dmin·dx · Σ_j bsums[j] · min(j / 2).
pub(super) fn min_term(dmin: [u8; 2], mins: &[u8; 8], x: &Q8KActivation, b: usize) -> f32 {
    let sumi: i32 = x.bsums[b * 16..][..16].iter().enumerate().map(|(j, &s)| s as i32 * mins[j / 2] as i32).sum();
    half(dmin) * x.d[b] * sumi as f32
}

pub fn dot_q2_k_q8_k_tokens<const N: usize>(w: &[u8], xs: [Q8KActivation; N]) -> [f32; N] {
    let row = blocks::<BlockQ2K>(w);
    let count = xs.iter().fold(row.len(), |m, x| m.min(x.d.len()).min(x.qs.len() / QK_K).min(x.bsums.len() / 16));
    let mut sums = [0.0f32; N];
    let mut values = [0i32; QK_K];
    for (b, block) in row[..count].iter().enumerate() {
        block.dequantize_ints(&mut values);
        for (sum, x) in sums.iter_mut().zip(&xs) {
            let q = &x.qs[b * QK_K..][..QK_K];
            let summs: i32 =
                x.bsums[b * 16..][..16].iter().zip(&block.scales).map(|(&s, &sc)| s as i32 * (sc >> 4) as i32).sum();
            let isum: i32 =
                (0..QK_K).map(|e| (block.scales[e / 16] & 15) as i32 * (values[e] * q[q8_k_position(e)] as i32)).sum();
            let (dall, dmin) = (x.d[b] * half(block.d), x.d[b] * half(block.dmin));
            *sum += dall * isum as f32 - dmin * summs as f32;
        }
    }
    sums
}

impl BlockQ2K {
    /// The 2-bit values, 0..=3, in element order.
    fn dequantize_ints(&self, values: &mut [i32; QK_K]) {
        for (e, v) in values.iter_mut().enumerate() {
            let (h, j, l) = (e / 128, (e / 32) % 4, e % 32);
            *v = ((self.qs[32 * h + l] >> (2 * j)) & 3) as i32;
        }
    }
}

pub fn dot_q3_k_q8_k_tokens<const N: usize>(w: &[u8], xs: [Q8KActivation; N]) -> [f32; N] {
    dot_k_lanes(
        w,
        xs,
        |block: &BlockQ3K, values| {
            for (e, v) in values.iter_mut().enumerate() {
                let (h, j, l) = (e / 128, (e / 32) % 4, e % 32);
                let low = ((block.qs[32 * h + l] >> (2 * j)) & 3) as i32;
                *v = low - if block.hmask[l] >> (e / 32) & 1 != 0 { 0 } else { 4 };
            }
        },
        |block, values, x, b| {
            let scales = block.scales();
            (lane_sums(values, |e| scales[e / 16] as i32, &x.qs[b * QK_K..]), 0.0)
        },
        |block| half(block.d),
    )
}

/// Q4_K's 4-bit values in element order: sub-block s takes the low (even s) or high nibbles
/// of bytes 32·(s / 2)..+32.
fn q4_k_values(qs: &[u8; 128], values: &mut [i32; QK_K]) {
    for (e, v) in values.iter_mut().enumerate() {
        *v = ((qs[32 * (e / 64) + e % 32] >> (4 * ((e / 32) % 2))) & 15) as i32;
    }
}

pub fn dot_q4_k_q8_k_tokens<const N: usize>(w: &[u8], xs: [Q8KActivation; N]) -> [f32; N] {
    dot_k_lanes(
        w,
        xs,
        |block: &BlockQ4K, values| q4_k_values(&block.qs, values),
        |block, values, x, b| {
            let (scales, mins) = scales_and_mins(&block.scales);
            (lane_sums(values, |e| scales[e / 32] as i32, &x.qs[b * QK_K..]), min_term(block.dmin, &mins, x, b))
        },
        |block| half(block.d),
    )
}

pub fn dot_q5_k_q8_k_tokens<const N: usize>(w: &[u8], xs: [Q8KActivation; N]) -> [f32; N] {
    dot_k_lanes(
        w,
        xs,
        |block: &BlockQ5K, values| {
            q4_k_values(&block.qs, values);
            for (e, v) in values.iter_mut().enumerate() {
                *v += (((block.qh[e % 32] >> (e / 32)) & 1) << 4) as i32;
            }
        },
        |block, values, x, b| {
            let (scales, mins) = scales_and_mins(&block.scales);
            (lane_sums(values, |e| scales[e / 32] as i32, &x.qs[b * QK_K..]), min_term(block.dmin, &mins, x, b))
        },
        |block| half(block.d),
    )
}

pub fn dot_q6_k_q8_k_tokens<const N: usize>(w: &[u8], xs: [Q8KActivation; N]) -> [f32; N] {
    dot_k_lanes(
        w,
        xs,
        |block: &BlockQ6K, values| {
            for (e, v) in values.iter_mut().enumerate() {
                *v = q6(block, e / 128, (e / 32) % 4, e % 32) as i32 - 32;
            }
        },
        |block, values, x, b| (lane_sums(values, |e| block.scales[e / 16] as i8 as i32, &x.qs[b * QK_K..]), 0.0),
        |block| half(block.d),
    )
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

/// Rounds each value to the nearest half (ties to even) and widens it back.
pub fn round_to_f16(values: &mut [f32]) {
    for v in values {
        *v = f16_to_f32(f32_to_f16(*v));
    }
}
