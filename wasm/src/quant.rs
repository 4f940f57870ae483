//! ggml weight types: block layouts, row sizes, dequantization, and the
//! activation-side conversions llama.cpp applies before each dot product.

use crate::error::{try_vec, Status};
use crate::f16::{f16_to_f32, f32_to_f16};

/// Elements per Q4_0 / Q8_0 block.
pub const QK: usize = 32;
/// f16 scale + 32 × i8.
pub const Q8_0_BLOCK_BYTES: usize = 34;
/// f16 scale + 16 bytes of packed nibbles.
pub const Q4_0_BLOCK_BYTES: usize = 18;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GgmlType {
    F32,
    F16,
    Q4_0,
    Q8_0,
}

impl GgmlType {
    pub fn from_id(id: u32) -> Option<GgmlType> {
        match id {
            0 => Some(GgmlType::F32),
            1 => Some(GgmlType::F16),
            2 => Some(GgmlType::Q4_0),
            8 => Some(GgmlType::Q8_0),
            _ => None,
        }
    }

    pub fn is_quantized(self) -> bool {
        matches!(self, GgmlType::Q4_0 | GgmlType::Q8_0)
    }

    /// Bytes of one row of `cols` values; None if cols do not fill whole blocks or the size overflows.
    pub fn row_bytes(self, cols: usize) -> Option<usize> {
        match self {
            GgmlType::F32 => cols.checked_mul(4),
            GgmlType::F16 => cols.checked_mul(2),
            GgmlType::Q4_0 if cols % QK == 0 => Some(cols / QK * Q4_0_BLOCK_BYTES),
            GgmlType::Q8_0 if cols % QK == 0 => Some(cols / QK * Q8_0_BLOCK_BYTES),
            _ => None,
        }
    }
}

/// Reads the little-endian f16 scale at the start of a block.
#[inline(always)]
pub fn block_scale(block: &[u8]) -> f32 {
    f16_to_f32(u16::from_le_bytes([block[0], block[1]]))
}

pub fn dequantize_row_q8_0(row: &[u8], out: &mut [f32]) {
    for (block, values) in row.chunks_exact(Q8_0_BLOCK_BYTES).zip(out.chunks_exact_mut(QK)) {
        dequantize_block_q8_0(block_scale(block), &block[2..], values);
    }
}

pub fn dequantize_row_q4_0(row: &[u8], out: &mut [f32]) {
    for (block, values) in row.chunks_exact(Q4_0_BLOCK_BYTES).zip(out.chunks_exact_mut(QK)) {
        dequantize_block_q4_0(block_scale(block), &block[2..], values);
    }
}

/// One block's 32 values from its scale and its 32 quant bytes.
pub fn dequantize_block_q8_0(d: f32, quants: &[u8], values: &mut [f32]) {
    for (v, &q) in values.iter_mut().zip(quants) {
        *v = q as i8 as f32 * d;
    }
}

/// One block's 32 values from its scale and its 16 bytes of nibbles.
pub fn dequantize_block_q4_0(d: f32, quants: &[u8], values: &mut [f32]) {
    let (low, high) = values.split_at_mut(QK / 2);
    for (j, &packed) in quants.iter().enumerate() {
        low[j] = ((packed & 15) as i32 - 8) as f32 * d;
        high[j] = ((packed >> 4) as i32 - 8) as f32 * d;
    }
}

/// Activation quantization exactly as ggml's `quantize_row_q8_0_ref`:
/// per block d = amax / 127 (stored as f16), q = round(x / d) computed as
/// round(x * (1/d)) with the unrounded d. `scales` gets the f16-rounded d
/// widened back to f32, which is what the dot multiplies by. `qs` may be wider
/// than i8 (the kernels read i16 so SIMD128 needs no per-row sign extension).
pub fn quantize_row_q8_0<Q: From<i8>>(x: &[f32], scales: &mut [f32], qs: &mut [Q]) {
    for ((values, scale), q) in x.chunks_exact(QK).zip(scales.iter_mut()).zip(qs.chunks_exact_mut(QK)) {
        let amax = values.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let d = amax / 127.0;
        let inverse = if d != 0.0 { 1.0 / d } else { 0.0 };
        *scale = f16_to_f32(f32_to_f16(d));
        for (qj, &v) in q.iter_mut().zip(values) {
            *qj = Q::from((v * inverse).round() as i8);
        }
    }
}

/// One matmul input for up to `max_tokens` tokens, converted once per token into
/// every form its consumers need (Q8_0 blocks for Q4_0/Q8_0 weights, f16-rounded
/// values for F16 weights) so that no weight row repeats the conversion.
pub struct PreparedInput {
    cols: usize,
    f16_rounded: Vec<f32>,
    q8_scales: Vec<f32>,
    q8_qs: Vec<i16>,
    q8_sums: Vec<i32>,
    q8_q4_mix: Vec<i16>,
}

impl PreparedInput {
    pub fn new(max_cols: usize, max_tokens: usize) -> Result<PreparedInput, Status> {
        let values = max_cols.checked_mul(max_tokens).ok_or(crate::error::ERR_TOO_LARGE)?;
        Ok(PreparedInput {
            cols: 0,
            f16_rounded: try_vec(values)?,
            q8_scales: try_vec(values / QK + max_tokens)?,
            q8_qs: try_vec(values)?,
            q8_sums: try_vec(values / QK + max_tokens)?,
            q8_q4_mix: try_vec(values)?,
        })
    }

    /// Converts `n` rows of `x` (each `x.len() / n` long). Q8_0 needs whole blocks:
    /// callers only ask for it when a quantized weight (cols % 32 == 0) consumes the input.
    pub fn prepare(&mut self, x: &[f32], n: usize, want_f16: bool, want_q8: bool) {
        self.prepare_with(crate::kernels::quantize_q8_0, x, n, want_f16, want_q8)
    }

    /// `prepare` through the given Q8_0 quantizer (the test hook compares the kernels').
    pub fn prepare_with(
        &mut self,
        quantize: fn(&[f32], Q8ActivationMut),
        x: &[f32],
        n: usize,
        want_f16: bool,
        want_q8: bool,
    ) {
        let cols = x.len() / n;
        self.cols = cols;
        if want_f16 {
            for (dst, &src) in self.f16_rounded.iter_mut().zip(x) {
                *dst = f16_to_f32(f32_to_f16(src));
            }
        }
        if want_q8 {
            for t in 0..n {
                let (values, blocks) = (t * cols..(t + 1) * cols, t * cols / QK..(t + 1) * cols / QK);
                let out = Q8ActivationMut {
                    scales: &mut self.q8_scales[blocks.clone()],
                    qs: &mut self.q8_qs[values.clone()],
                    sums: &mut self.q8_sums[blocks],
                    q4_mix: &mut self.q8_q4_mix[values],
                };
                quantize(&x[t * cols..][..cols], out);
            }
        }
    }

    pub fn f16_rounded(&self, token: usize) -> &[f32] {
        &self.f16_rounded[token * self.cols..][..self.cols]
    }

    pub fn q8(&self, token: usize) -> Q8Activation<'_> {
        Q8Activation {
            scales: &self.q8_scales[token * self.cols / QK..][..self.cols / QK],
            qs: &self.q8_qs[token * self.cols..][..self.cols],
            sums: &self.q8_sums[token * self.cols / QK..][..self.cols / QK],
            q4_mix: &self.q8_q4_mix[token * self.cols..][..self.cols],
        }
    }
}

/// One token's activation in Q8_0 form, as a quantized dot consumes it: per block the
/// f16-rounded scale (widened to f32) and the 32 values q in [-128, 127] (widened to i16);
/// and for the packed Q4_0 kernel (see `packed`), per block Σ q (it takes Σ (w - 8)·q as
/// Σ w·q - 8·Σ q) and `q4_mix`: q0..8, q8..16 - 16·q0..8, q16..24, q24..32 - 16·q16..24,
/// so that a byte b = lo + 16·hi of nibbles gives lo·q_k + hi·q_8+k as b·q_k + hi·mix.
#[derive(Clone, Copy)]
pub struct Q8Activation<'a> {
    pub scales: &'a [f32],
    pub qs: &'a [i16],
    pub sums: &'a [i32],
    pub q4_mix: &'a [i16],
}

/// Where one row's `Q8Activation` is written.
pub struct Q8ActivationMut<'a> {
    pub scales: &'a mut [f32],
    pub qs: &'a mut [i16],
    pub sums: &'a mut [i32],
    pub q4_mix: &'a mut [i16],
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

    #[test]
    fn q8_0_activation_quantization_matches_hand_checked_values() {
        // Block 0: amax = 127 → d = 1 exactly, so q = roundf(x): halves round away from zero.
        // Block 1: d = 2.54 / 127 ≈ 0.02, stored as f16 0x251f = 1311 / 65536.
        // Block 2 stays all zero: d = 0 and every q = 0.
        let mut x = [0.0f32; 96];
        x[..6].copy_from_slice(&[127.0, -0.5, 0.5, 2.5, -1.4, -127.0]);
        x[32] = -2.54;
        x[33] = 1.0;
        let mut scales = [0.0f32; 3];
        let mut qs = [0i8; 96]; // i8 as ggml stores them
        quantize_row_q8_0(&x, &mut scales, &mut qs);
        assert_eq!(&qs[..6], &[127, -1, 1, 3, -1, -127]);
        assert_eq!(scales[0], 1.0);
        assert_eq!(&qs[32..34], &[-127, 50]);
        assert_eq!(scales[1], 1311.0 / 65536.0);
        assert_eq!(scales[2], 0.0);
        assert!(qs[64..].iter().all(|&q| q == 0));
    }

    #[test]
    fn q8_0_quantization_of_negative_amax() {
        let mut x = [0.5f32; 32];
        x[7] = -6.35; // d = 0.05
        let mut scales = [0.0f32; 1];
        let mut qs = [0i8; 32];
        quantize_row_q8_0(&x, &mut scales, &mut qs);
        assert_eq!(qs[7], -127);
        assert_eq!(qs[0], 10);
    }

    #[test]
    fn dequantizes_known_blocks() {
        let mut q8 = vec![0x00, 0x38]; // d = 0.5
        q8.extend((0..32).map(|i| (i as i8 - 16) as u8));
        let mut out = [0.0f32; 32];
        dequantize_row_q8_0(&q8, &mut out);
        assert_eq!(out[0], -8.0);
        assert_eq!(out[31], 7.5);

        let mut q4 = vec![0x00, 0x40]; // d = 2
        q4.extend((0..16).map(|j| (j as u8) | (((15 - j) as u8) << 4)));
        dequantize_row_q4_0(&q4, &mut out);
        assert_eq!(out[0], -16.0); // (0 - 8) * 2
        assert_eq!(out[15], 14.0); // (15 - 8) * 2
        assert_eq!(out[16], 14.0); // high nibble of byte 0 is 15
        assert_eq!(out[31], -16.0);
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
    fn row_bytes_rejects_partial_blocks_and_overflow() {
        assert_eq!(GgmlType::Q8_0.row_bytes(64), Some(68));
        assert_eq!(GgmlType::Q4_0.row_bytes(64), Some(36));
        assert_eq!(GgmlType::Q4_0.row_bytes(33), None);
        assert_eq!(GgmlType::F16.row_bytes(33), Some(66));
        assert_eq!(GgmlType::F32.row_bytes(usize::MAX), None);
    }
}
