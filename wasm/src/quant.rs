//! ggml weight types (the engine's mirror of the SDK's type table) and the activation side of
//! each dot product: llama.cpp converts the input of a matmul to its weight type's
//! `vec_dot_type` first (Q8_0, Q8_1, Q8_K, f16 or bf16), and so does this engine.

use crate::error::{try_vec, Status, ERR_TOO_LARGE};
use crate::f16::{bf16_to_f32, f16_to_f32, f32_to_bf16, f32_to_f16};

/// Elements per Q4_0 / Q4_1 / Q5_0 / Q5_1 / Q8_0 block (and per Q8_0 / Q8_1 activation block).
pub const QK: usize = 32;
/// Elements per K-quant super-block (and per Q8_K activation block).
pub const QK_K: usize = 256;
/// f16 scale + 32 × i8.
pub const Q8_0_BLOCK_BYTES: usize = 34;
/// f16 scale + 16 bytes of packed nibbles.
pub const Q4_0_BLOCK_BYTES: usize = 18;

/// The weight types the engine runs. IQ*, TQ* and MXFP4 are not among them: the SDK refuses
/// those by name before any byte reaches the engine.
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GgmlType {
    F32,
    F16,
    BF16,
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q8_0,
    Q2_K,
    Q3_K,
    Q4_K,
    Q5_K,
    Q6_K,
}

/// What a weight type's dot product consumes: the activation converted as llama.cpp's
/// `vec_dot_type` for that weight type.
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// As is (F32 weights).
    F32,
    /// Rounded to half precision and widened back (F16 weights).
    F16,
    /// Rounded to bfloat16 and widened back (BF16 weights).
    BF16,
    /// Q8_0 blocks of 32 (Q4_0, Q5_0, Q8_0 weights).
    Q8_0,
    /// Q8_1: Q8_0's blocks plus each block's f16 s = d·Σq (Q4_1, Q5_1 weights).
    Q8_1,
    /// Q8_K super-blocks of 256 (the K-quants).
    Q8_K,
}

impl GgmlType {
    pub const ALL: [GgmlType; 13] = [
        GgmlType::F32,
        GgmlType::F16,
        GgmlType::BF16,
        GgmlType::Q4_0,
        GgmlType::Q4_1,
        GgmlType::Q5_0,
        GgmlType::Q5_1,
        GgmlType::Q8_0,
        GgmlType::Q2_K,
        GgmlType::Q3_K,
        GgmlType::Q4_K,
        GgmlType::Q5_K,
        GgmlType::Q6_K,
    ];

    /// ggml's type id (`enum ggml_type`), as GGUF stores it.
    pub const fn id(self) -> u32 {
        match self {
            GgmlType::F32 => 0,
            GgmlType::F16 => 1,
            GgmlType::Q4_0 => 2,
            GgmlType::Q4_1 => 3,
            GgmlType::Q5_0 => 6,
            GgmlType::Q5_1 => 7,
            GgmlType::Q8_0 => 8,
            GgmlType::Q2_K => 10,
            GgmlType::Q3_K => 11,
            GgmlType::Q4_K => 12,
            GgmlType::Q5_K => 13,
            GgmlType::Q6_K => 14,
            GgmlType::BF16 => 30,
        }
    }

    pub fn from_id(id: u32) -> Option<GgmlType> {
        GgmlType::ALL.iter().copied().find(|t| t.id() == id)
    }

    pub const fn name(self) -> &'static str {
        match self {
            GgmlType::F32 => "F32",
            GgmlType::F16 => "F16",
            GgmlType::BF16 => "BF16",
            GgmlType::Q4_0 => "Q4_0",
            GgmlType::Q4_1 => "Q4_1",
            GgmlType::Q5_0 => "Q5_0",
            GgmlType::Q5_1 => "Q5_1",
            GgmlType::Q8_0 => "Q8_0",
            GgmlType::Q2_K => "Q2_K",
            GgmlType::Q3_K => "Q3_K",
            GgmlType::Q4_K => "Q4_K",
            GgmlType::Q5_K => "Q5_K",
            GgmlType::Q6_K => "Q6_K",
        }
    }

    /// Elements per block (1 for the float types).
    pub const fn block_size(self) -> usize {
        match self {
            GgmlType::F32 | GgmlType::F16 | GgmlType::BF16 => 1,
            GgmlType::Q4_0 | GgmlType::Q4_1 | GgmlType::Q5_0 | GgmlType::Q5_1 | GgmlType::Q8_0 => QK,
            GgmlType::Q2_K | GgmlType::Q3_K | GgmlType::Q4_K | GgmlType::Q5_K | GgmlType::Q6_K => QK_K,
        }
    }

    /// Bytes per block (`ggml-common.h`'s block structs; `blocks` asserts each size).
    pub const fn block_bytes(self) -> usize {
        match self {
            GgmlType::F32 => 4,
            GgmlType::F16 | GgmlType::BF16 => 2,
            GgmlType::Q4_0 => Q4_0_BLOCK_BYTES,
            GgmlType::Q4_1 => 20,
            GgmlType::Q5_0 => 22,
            GgmlType::Q5_1 => 24,
            GgmlType::Q8_0 => Q8_0_BLOCK_BYTES,
            GgmlType::Q2_K => 84,
            GgmlType::Q3_K => 110,
            GgmlType::Q4_K => 144,
            GgmlType::Q5_K => 176,
            GgmlType::Q6_K => 210,
        }
    }

    pub const fn is_quantized(self) -> bool {
        self.block_size() > 1
    }

    /// The activation form this type's dot product takes (llama.cpp's `vec_dot_type`).
    pub const fn activation(self) -> Activation {
        match self {
            GgmlType::F32 => Activation::F32,
            GgmlType::F16 => Activation::F16,
            GgmlType::BF16 => Activation::BF16,
            GgmlType::Q4_0 | GgmlType::Q5_0 | GgmlType::Q8_0 => Activation::Q8_0,
            GgmlType::Q4_1 | GgmlType::Q5_1 => Activation::Q8_1,
            GgmlType::Q2_K | GgmlType::Q3_K | GgmlType::Q4_K | GgmlType::Q5_K | GgmlType::Q6_K => Activation::Q8_K,
        }
    }

    /// Bytes of one row of `cols` values; None if cols do not fill whole blocks or the size overflows.
    pub fn row_bytes(self, cols: usize) -> Option<usize> {
        if cols % self.block_size() != 0 {
            return None;
        }
        (cols / self.block_size()).checked_mul(self.block_bytes())
    }
}

/// Reads the little-endian f16 scale at the start of a block.
#[inline(always)]
pub fn block_scale(block: &[u8]) -> f32 {
    f16_to_f32(u16::from_le_bytes([block[0], block[1]]))
}

/// ggml's `nearest_int`: rounds to nearest, ties to even, by adding 1.5·2^23 (exact for
/// |x| < 2^22, the range ggml asserts).
#[inline(always)]
pub fn nearest_int(x: f32) -> i32 {
    ((x + 12_582_912.0).to_bits() & 0x007f_ffff) as i32 - 0x0040_0000
}

/// Activation quantization exactly as ggml's `quantize_row_q8_0_ref` (which
/// `quantize_row_q8_1_ref` repeats): per block d = amax / 127 (stored as f16), q = round(x / d)
/// computed as roundf(x · (1/d)) with the unrounded d. `scales` gets the f16-rounded d widened
/// back to f32, which is what the dot multiplies by, and `q8_1_s` Q8_1's f16(d · Σq) widened.
/// `qs` may be wider than i8 (the kernels read i16 so SIMD128 needs no per-row sign extension).
pub fn quantize_row_q8_0<Q: From<i8>>(x: &[f32], scales: &mut [f32], q8_1_s: &mut [f32], qs: &mut [Q]) {
    let blocks = x.chunks_exact(QK).zip(scales.iter_mut()).zip(q8_1_s.iter_mut()).zip(qs.chunks_exact_mut(QK));
    for (((values, scale), s), q) in blocks {
        let amax = values.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let d = amax / 127.0;
        let inverse = if d != 0.0 { 1.0 / d } else { 0.0 };
        *scale = f16_to_f32(f32_to_f16(d));
        let mut sum = 0i32;
        for (qj, &v) in q.iter_mut().zip(values) {
            let rounded = (v * inverse).round() as i8;
            sum += rounded as i32;
            *qj = Q::from(rounded);
        }
        *s = f16_to_f32(f32_to_f16(sum as f32 * d));
    }
}

/// Where element e of a Q8_K block is stored in `Q8KActivation::qs`: each 16 values are kept
/// in pairs (k, k + 8), so that one i32x4.dot_i16x8 lane adds two values of the same lane of
/// ggml's eight lane sums (element e goes to lane e % 8; see `kernels::scalar`).
#[inline(always)]
pub const fn q8_k_position(e: usize) -> usize {
    e - e % 16 + 2 * (e % 8) + (e % 16) / 8
}

/// Where element e of a Q8_K block is stored in `Q8KActivation::relaxed` (and where the relaxed
/// build keeps a K-quant weight's byte of it, `packed`'s kernel order): each 32 values
/// as two vectors of 16, vector v holding lanes 4v..4v + 4 of ggml's eight lane sums, four bytes
/// a lane: elements l, l + 8, l + 16, l + 24 (l = e % 8). An i16x8 relaxed dot then adds two
/// products of one lane and one 16-value sub-block per i16 lane (the two 16s alternating), and
/// four of one lane per pair of i16 lanes, which i32x4.dot_i16x8 adds up.
#[inline(always)]
pub const fn relaxed_position(e: usize) -> usize {
    let (l, r) = (e % 8, e % 32);
    e - r + 16 * (l / 4) + 4 * (l % 4) + 2 * (r / 16) + (r % 16) / 8
}

/// Whether `PreparedInput` also keeps the Q8_0 and Q8_K values as i8 in the orders of the
/// relaxed kernels (`Q8Activation::nibble_order`, `Q8KActivation::relaxed`): only the relaxed-SIMD
/// build reads them.
pub const RELAXED_ORDERS: bool = cfg!(feature = "relaxed-simd");

/// Activation quantization exactly as ggml's `quantize_row_q8_K_ref`: per super-block of 256,
/// max = the first value of largest magnitude, iscale = -127 / max, q = nearest_int(iscale · x)
/// capped at 127 (and, here, at -128 below, which only a non-finite input reaches), d = 1 / iscale
/// kept in f32, and the sums of each 16 q. An all-zero block has d = 0 and q = 0. `qs` holds the
/// values in `q8_k_position` order.
pub fn quantize_row_q8_k(x: &[f32], d: &mut [f32], qs: &mut [i16], bsums: &mut [i16]) {
    let blocks = x.chunks_exact(QK_K).zip(d.iter_mut()).zip(qs.chunks_exact_mut(QK_K)).zip(bsums.chunks_exact_mut(16));
    for (((values, d), q), bsums) in blocks {
        let (mut amax, mut max) = (0.0f32, 0.0f32);
        for &v in values {
            if v.abs() > amax {
                amax = v.abs();
                max = v;
            }
        }
        if amax == 0.0 {
            *d = 0.0;
            q.iter_mut().for_each(|q| *q = 0);
            bsums.iter_mut().for_each(|s| *s = 0);
            continue;
        }
        let iscale = -127.0 / max;
        for (e, &v) in values.iter().enumerate() {
            q[q8_k_position(e)] = nearest_int(iscale * v).clamp(-128, 127) as i16;
        }
        for (sum, group) in bsums.iter_mut().zip(q.chunks_exact(16)) {
            *sum = group.iter().sum();
        }
        *d = 1.0 / iscale;
    }
}

/// Which activation forms a matmul input needs (`input_needs` finds them from its consumers).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Needs {
    pub f16: bool,
    pub bf16: bool,
    /// Q8_0 blocks, with Q8_1's sums and the Q4_0 helpers.
    pub q8: bool,
    pub q8_k: bool,
}

impl Needs {
    pub fn add(&mut self, activation: Activation) {
        match activation {
            Activation::F32 => {}
            Activation::F16 => self.f16 = true,
            Activation::BF16 => self.bf16 = true,
            Activation::Q8_0 | Activation::Q8_1 => self.q8 = true,
            Activation::Q8_K => self.q8_k = true,
        }
    }
}

/// The activation quantizers of one kernel backend (the test hook compares the scalar and the
/// SIMD128 ones).
#[derive(Clone, Copy)]
pub struct Quantizers {
    pub q8: fn(&[f32], Q8ActivationMut),
    pub q8_k: fn(&[f32], Q8KActivationMut),
}

/// One matmul input for up to `max_tokens` tokens, converted once per token into every form
/// its consumers need (a layer may mix weight types), so that no weight row repeats the conversion.
pub struct PreparedInput {
    cols: usize,
    f16_rounded: Vec<f32>,
    bf16_rounded: Vec<f32>,
    q8_scales: Vec<f32>,
    q8_1_s: Vec<f32>,
    q8_qs: Vec<i16>,
    q8_sums: Vec<i32>,
    q8_q4_mix: Vec<i16>,
    q8_nibble_order: Vec<i8>,
    q8k_d: Vec<f32>,
    q8k_qs: Vec<i16>,
    q8k_bsums: Vec<i16>,
    q8k_relaxed: Vec<i8>,
}

impl PreparedInput {
    pub fn new(max_cols: usize, max_tokens: usize) -> Result<PreparedInput, Status> {
        let values = max_cols.checked_mul(max_tokens).ok_or(ERR_TOO_LARGE)?;
        let blocks = values / QK + max_tokens;
        Ok(PreparedInput {
            cols: 0,
            f16_rounded: try_vec(values)?,
            bf16_rounded: try_vec(values)?,
            q8_scales: try_vec(blocks)?,
            q8_1_s: try_vec(blocks)?,
            q8_qs: try_vec(values)?,
            q8_sums: try_vec(blocks)?,
            q8_q4_mix: try_vec(values)?,
            q8_nibble_order: try_vec(if RELAXED_ORDERS { values } else { 0 })?,
            q8k_d: try_vec(values / QK_K + max_tokens)?,
            q8k_qs: try_vec(values)?,
            q8k_bsums: try_vec(values / 16 + max_tokens)?,
            q8k_relaxed: try_vec(if RELAXED_ORDERS { values } else { 0 })?,
        })
    }

    /// Bytes `new(cols, tokens)` allocates per token of `cols` values (an upper bound).
    pub fn bytes_per_token(cols: u64) -> u64 {
        // f16- and bf16-rounded f32; i16 Q8_0 values, their Q4_0 mix, i16 Q8_K values;
        // per 32 an f32 scale, an f32 Q8_1 sum and an i32 sum; per 16 an i16 sum; per 256 an f32;
        // in the relaxed build, i8 Q8_0 and Q8_K values.
        let per_value = 4 + 4 + 2 + 2 + 2 + 2 * RELAXED_ORDERS as u64;
        cols * per_value + (cols / 32 + 1) * 12 + (cols / 16 + 1) * 2 + (cols / 256 + 1) * 4
    }

    /// Converts `n` rows of `x` (each `x.len() / n` long) into the forms `needs` asks for. Q8_0
    /// and Q8_K need whole blocks: they are only asked for when a weight of that kind (whose
    /// cols fill whole blocks) consumes the input.
    pub fn prepare(&mut self, x: &[f32], n: usize, needs: Needs) {
        self.prepare_with(crate::kernels::QUANTIZERS, x, n, needs)
    }

    /// `prepare` through the given quantizers.
    pub fn prepare_with(&mut self, quantizers: Quantizers, x: &[f32], n: usize, needs: Needs) {
        let cols = x.len() / n;
        self.cols = cols;
        if needs.f16 {
            for (dst, &src) in self.f16_rounded.iter_mut().zip(x) {
                *dst = f16_to_f32(f32_to_f16(src));
            }
        }
        if needs.bf16 {
            for (dst, &src) in self.bf16_rounded.iter_mut().zip(x) {
                *dst = bf16_to_f32(f32_to_bf16(src));
            }
        }
        for t in 0..n {
            let (row, values) = (&x[t * cols..][..cols], t * cols..(t + 1) * cols);
            if needs.q8 {
                let blocks = t * cols / QK..(t + 1) * cols / QK;
                let out = Q8ActivationMut {
                    scales: &mut self.q8_scales[blocks.clone()],
                    q8_1_s: &mut self.q8_1_s[blocks.clone()],
                    qs: &mut self.q8_qs[values.clone()],
                    sums: &mut self.q8_sums[blocks],
                    q4_mix: &mut self.q8_q4_mix[values.clone()],
                };
                (quantizers.q8)(row, out);
                if RELAXED_ORDERS {
                    nibble_order(&self.q8_qs[values.clone()], &mut self.q8_nibble_order[values.clone()]);
                }
            }
            if needs.q8_k {
                let out = Q8KActivationMut {
                    d: &mut self.q8k_d[t * cols / QK_K..(t + 1) * cols / QK_K],
                    qs: &mut self.q8k_qs[values.clone()],
                    bsums: &mut self.q8k_bsums[t * cols / 16..(t + 1) * cols / 16],
                };
                (quantizers.q8_k)(row, out);
                if RELAXED_ORDERS {
                    relaxed_order(&self.q8k_qs[values.clone()], &mut self.q8k_relaxed[values]);
                }
            }
        }
    }

    pub fn f16_rounded(&self, token: usize) -> &[f32] {
        &self.f16_rounded[token * self.cols..][..self.cols]
    }

    pub fn bf16_rounded(&self, token: usize) -> &[f32] {
        &self.bf16_rounded[token * self.cols..][..self.cols]
    }

    pub fn q8(&self, token: usize) -> Q8Activation<'_> {
        let (values, blocks) = (token * self.cols..(token + 1) * self.cols, self.cols / QK);
        Q8Activation {
            scales: &self.q8_scales[token * blocks..][..blocks],
            q8_1_s: &self.q8_1_s[token * blocks..][..blocks],
            qs: &self.q8_qs[values.clone()],
            sums: &self.q8_sums[token * blocks..][..blocks],
            q4_mix: &self.q8_q4_mix[values.clone()],
            nibble_order: if RELAXED_ORDERS { &self.q8_nibble_order[values] } else { &[] },
        }
    }

    pub fn q8_k(&self, token: usize) -> Q8KActivation<'_> {
        let (blocks, groups) = (self.cols / QK_K, self.cols / 16);
        Q8KActivation {
            d: &self.q8k_d[token * blocks..][..blocks],
            qs: &self.q8k_qs[token * self.cols..][..self.cols],
            bsums: &self.q8k_bsums[token * groups..][..groups],
            relaxed: if RELAXED_ORDERS { &self.q8k_relaxed[token * self.cols..][..self.cols] } else { &[] },
        }
    }
}

/// One token's activation in Q8_0 / Q8_1 form, as a quantized dot consumes it: per block the
/// f16-rounded scale (widened to f32), Q8_1's s, and the 32 values q in [-128, 127] (widened to
/// i16); and for the packed Q4_0 kernel (see `packed`), per block Σ q (it takes Σ (w - 8)·q as
/// Σ w·q - 8·Σ q) and `q4_mix`: q0..8, q8..16 - 16·q0..8, q16..24, q24..32 - 16·q16..24,
/// so that a byte b = lo + 16·hi of nibbles gives lo·q_k + hi·q_8+k as b·q_k + hi·mix; in the
/// relaxed build (`RELAXED_ORDERS`, else empty) `nibble_order`: per block the values as i8 beside
/// a packed group's nibbles (`packed`): q0..8, q16..24 (the low ones), q8..16, q24..32 (the high).
#[derive(Clone, Copy)]
pub struct Q8Activation<'a> {
    pub scales: &'a [f32],
    pub q8_1_s: &'a [f32],
    pub qs: &'a [i16],
    pub sums: &'a [i32],
    pub q4_mix: &'a [i16],
    pub nibble_order: &'a [i8],
}

/// Where one row's `Q8Activation` is written.
pub struct Q8ActivationMut<'a> {
    pub scales: &'a mut [f32],
    pub q8_1_s: &'a mut [f32],
    pub qs: &'a mut [i16],
    pub sums: &'a mut [i32],
    pub q4_mix: &'a mut [i16],
}

/// One token's activation in Q8_K form: per super-block of 256 its f32 d, the values q in
/// [-127, 127] (widened to i16, in `q8_k_position` order) and the sum of each 16 of them; in the
/// relaxed build (`RELAXED_ORDERS`, else empty) the same values as i8 in `relaxed_position` order.
#[derive(Clone, Copy)]
pub struct Q8KActivation<'a> {
    pub d: &'a [f32],
    pub qs: &'a [i16],
    pub bsums: &'a [i16],
    pub relaxed: &'a [i8],
}

/// Where one row's `Q8KActivation` is written.
pub struct Q8KActivationMut<'a> {
    pub d: &'a mut [f32],
    pub qs: &'a mut [i16],
    pub bsums: &'a mut [i16],
}

/// Q8_0 values (i16 within i8's range) as i8 in `Q8Activation::nibble_order`.
fn nibble_order(qs: &[i16], ordered: &mut [i8]) {
    for (block, ordered) in qs.chunks_exact(QK).zip(ordered.chunks_exact_mut(QK)) {
        for (at, from) in [0, 16, 8, 24].into_iter().enumerate() {
            for k in 0..8 {
                ordered[8 * at + k] = block[from + k] as i8;
            }
        }
    }
}

/// Q8_K values (`q8_k_position` order, i16 within i8's range) as i8 in `relaxed_position` order.
fn relaxed_order(qs: &[i16], relaxed: &mut [i8]) {
    for (qs, relaxed) in qs.chunks_exact(QK_K).zip(relaxed.chunks_exact_mut(QK_K)) {
        for e in 0..QK_K {
            relaxed[relaxed_position(e)] = qs[q8_k_position(e)] as i8;
        }
    }
}

/// The Q4_0 helpers of a `Q8Activation`, from its values.
pub fn q4_extras(qs: &[i16], sums: &mut [i32], q4_mix: &mut [i16]) {
    for ((block, sum), mix) in qs.chunks_exact(QK).zip(sums.iter_mut()).zip(q4_mix.chunks_exact_mut(QK)) {
        *sum = block.iter().map(|&q| q as i32).sum();
        for half in [0, QK / 2] {
            for k in 0..8 {
                let (low, high) = (block[half + k], block[half + 8 + k]);
                mix[half + k] = low;
                mix[half + 8 + k] = high - 16 * low;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q8_0(x: &[f32]) -> (Vec<f32>, Vec<f32>, Vec<i8>) {
        let blocks = x.len() / QK;
        let (mut scales, mut s, mut qs) = (vec![0.0; blocks], vec![0.0; blocks], vec![0i8; x.len()]);
        quantize_row_q8_0(x, &mut scales, &mut s, &mut qs); // i8 as ggml stores them
        (scales, s, qs)
    }

    #[test]
    fn q8_0_activation_quantization_matches_hand_checked_values() {
        // Block 0: amax = 127 → d = 1 exactly, so q = roundf(x): halves round away from zero.
        // Block 1: d = 2.54 / 127 ≈ 0.02, stored as f16 0x251f = 1311 / 65536.
        // Block 2 stays all zero: d = 0 and every q = 0.
        let mut x = [0.0f32; 96];
        x[..6].copy_from_slice(&[127.0, -0.5, 0.5, 2.5, -1.4, -127.0]);
        x[32] = -2.54;
        x[33] = 1.0;
        let (scales, s, qs) = q8_0(&x);
        assert_eq!(&qs[..6], &[127, -1, 1, 3, -1, -127]);
        assert_eq!(scales[0], 1.0);
        assert_eq!(s[0], 2.0); // Σq = 127 - 1 + 1 + 3 - 1 - 127 = 2, times d = 1
        assert_eq!(&qs[32..34], &[-127, 50]);
        assert_eq!(scales[1], 1311.0 / 65536.0);
        // Q8_1's s takes the unrounded d: -77 · 0.02 = -1.54, as f16.
        assert_eq!(s[1], f16_to_f32(f32_to_f16(-77.0 * (2.54f32 / 127.0))));
        assert_eq!((scales[2], s[2]), (0.0, 0.0));
        assert!(qs[64..].iter().all(|&q| q == 0));
    }

    #[test]
    fn q8_0_quantization_of_negative_amax() {
        let mut x = [0.5f32; 32];
        x[7] = -6.35; // d = 0.05
        let (_, _, qs) = q8_0(&x);
        assert_eq!(qs[7], -127);
        assert_eq!(qs[0], 10);
    }

    #[test]
    fn q8_k_quantization_matches_hand_checked_values() {
        // Block 0: max = -127, the first value of largest magnitude (sign kept): iscale = 1,
        // d = 1, and nearest_int rounds the halves to even. Block 1 is all zero.
        let mut x = vec![0.0f32; 512];
        x[..4].copy_from_slice(&[-127.0, 127.0, 0.5, 1.5]);
        x[17] = 2.5;
        let (mut d, mut qs, mut bsums) = (vec![0.0; 2], vec![0i16; 512], vec![0i16; 32]);
        quantize_row_q8_k(&x, &mut d, &mut qs, &mut bsums);
        assert_eq!(d[0], 1.0);
        let q = |e: usize| qs[q8_k_position(e)];
        assert_eq!([q(0), q(1), q(2), q(3), q(17)], [-127, 127, 0, 2, 2]);
        assert_eq!(&qs[..6], &[-127, 0, 127, 0, 0, 0]); // pairs (0, 8), (1, 9), (2, 10)
        assert_eq!(&bsums[..2], &[2, 2]);
        assert_eq!(d[1], 0.0);
        assert!(qs[256..].iter().all(|&q| q == 0) && bsums[16..].iter().all(|&s| s == 0));
    }

    #[test]
    fn q8_k_positions_pair_each_value_with_the_one_8_later() {
        let positions: Vec<usize> = (0..32).map(q8_k_position).collect();
        let mut seen = positions.clone();
        seen.sort_unstable();
        assert_eq!(seen, (0..32).collect::<Vec<_>>());
        assert_eq!(&positions[..16], &[0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15]);
        assert_eq!(positions[16], 16);
    }

    #[test]
    fn relaxed_positions_put_four_values_of_one_lane_side_by_side() {
        let positions: Vec<usize> = (0..64).map(relaxed_position).collect();
        let mut seen = positions.clone();
        seen.sort_unstable();
        assert_eq!(seen, (0..64).collect::<Vec<_>>());
        // Bytes 0..4: lane 0 (elements 0, 8, 16, 24); bytes 16..20: lane 4.
        let at = |p: usize| positions.iter().position(|&q| q == p).unwrap();
        assert_eq!([at(0), at(1), at(2), at(3), at(4)], [0, 8, 16, 24, 1]);
        assert_eq!([at(16), at(17), at(18), at(19)], [4, 12, 20, 28]);
        assert_eq!(at(32), 32);
        let (qs, mut relaxed) = ((0..256).map(|p| (p % 251) as i16 - 125).collect::<Vec<_>>(), vec![0i8; 256]);
        relaxed_order(&qs, &mut relaxed);
        for e in 0..256 {
            assert_eq!(relaxed[relaxed_position(e)] as i16, qs[q8_k_position(e)]);
        }
    }

    #[test]
    fn nearest_int_rounds_ties_to_even() {
        let cases = [(0.5, 0), (1.5, 2), (2.5, 2), (-0.5, 0), (-1.5, -2), (126.7, 127), (-127.2, -127)];
        for (x, want) in cases {
            assert_eq!(nearest_int(x), want, "{x}");
        }
    }

    #[test]
    fn q4_mix_turns_nibble_bytes_into_the_block_dot() {
        // What the packed Q4_0 SIMD kernel computes from a byte b = lo + 16·hi (lo element k,
        // hi element 8 + k of a half block), against the plain dot, at the value extremes.
        let qs: Vec<i16> = (0..32).map(|i| [-128, 127, -1, 0, 5][i % 5]).collect();
        let (mut sums, mut mix) = ([0; 1], [0i16; 32]);
        q4_extras(&qs, &mut sums, &mut mix);
        assert_eq!(sums[0], qs.iter().map(|&q| q as i32).sum::<i32>());
        let nibble = |j: usize| [15, 0, 7, 8, 3][j % 5] as i32;
        let want: i32 = (0..32).map(|j| nibble(j) * qs[j] as i32).sum();
        let got: i32 = [0, 16]
            .iter()
            .flat_map(|&half| (0..8).map(move |k| (half, k)))
            .map(|(half, k)| {
                let (lo, hi) = (nibble(half + k), nibble(half + 8 + k));
                (lo + 16 * hi) * mix[half + k] as i32 + hi * mix[half + 8 + k] as i32
            })
            .sum();
        assert_eq!(got, want);
    }

    #[test]
    fn type_table_matches_ggml() {
        let ids: Vec<u32> = GgmlType::ALL.iter().map(|t| t.id()).collect();
        assert_eq!(ids, [0, 1, 30, 2, 3, 6, 7, 8, 10, 11, 12, 13, 14]);
        for ty in GgmlType::ALL {
            assert_eq!(GgmlType::from_id(ty.id()), Some(ty));
        }
        for unknown in [4, 5, 9, 15, 16, 20, 23, 24, 34, 35, 39, 1000] {
            assert_eq!(GgmlType::from_id(unknown), None, "id {unknown}"); // Q8_1/Q8_K, IQ*, TQ*, MXFP4, ints
        }
        assert_eq!(GgmlType::Q4_K.name(), "Q4_K");
        assert_eq!((GgmlType::Q6_K.block_size(), GgmlType::Q6_K.block_bytes()), (256, 210));
        assert_eq!(GgmlType::Q5_1.activation(), Activation::Q8_1);
    }

    #[test]
    fn row_bytes_rejects_partial_blocks_and_overflow() {
        assert_eq!(GgmlType::Q8_0.row_bytes(64), Some(68));
        assert_eq!(GgmlType::Q4_0.row_bytes(64), Some(36));
        assert_eq!(GgmlType::Q4_0.row_bytes(33), None);
        assert_eq!(GgmlType::Q4_K.row_bytes(512), Some(288));
        assert_eq!(GgmlType::Q4_K.row_bytes(576), None);
        assert_eq!(GgmlType::BF16.row_bytes(33), Some(66));
        assert_eq!(GgmlType::F16.row_bytes(33), Some(66));
        assert_eq!(GgmlType::F32.row_bytes(usize::MAX), None);
    }
}
