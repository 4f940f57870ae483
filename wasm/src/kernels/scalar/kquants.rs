//! The K-quants (Q2_K .. Q6_K) · Q8_K, super-blocks of 256, in the f32 steps of ggml's generic
//! kernels (`ggml_vec_dot_q*_K_q8_K_generic`): part of `scalar.rs`, the reference for
//! `simd128/kquants.rs`. Rows come in kernel order (`packed`); each block is put back in GGUF
//! order first.

use crate::blocks::{blocks, half, in_gguf_order, q6, scales_and_mins, Block, BlockQ2K, BlockQ3K, BlockQ4K, BlockQ5K, BlockQ6K};
use crate::quant::{q8_k_position, Q8KActivation, QK_K};

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
fn dot_k_lanes<B: Block + Copy, const N: usize>(
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
        let block = &in_gguf_order(block);
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
pub(in crate::kernels) fn min_term(dmin: [u8; 2], mins: &[u8; 8], x: &Q8KActivation, b: usize) -> f32 {
    let sumi: i32 = x.bsums[b * 16..][..16].iter().enumerate().map(|(j, &s)| s as i32 * mins[j / 2] as i32).sum();
    half(dmin) * x.d[b] * sumi as f32
}

pub fn dot_q2_k_q8_k_tokens<const N: usize>(w: &[u8], xs: [Q8KActivation; N]) -> [f32; N] {
    let row = blocks::<BlockQ2K>(w);
    let count = xs.iter().fold(row.len(), |m, x| m.min(x.d.len()).min(x.qs.len() / QK_K).min(x.bsums.len() / 16));
    let mut sums = [0.0f32; N];
    let mut values = [0i32; QK_K];
    for (b, block) in row[..count].iter().enumerate() {
        let block = &in_gguf_order(block);
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
