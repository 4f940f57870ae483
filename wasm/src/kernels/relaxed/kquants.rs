//! Relaxed-SIMD twins of `simd128/kquants.rs`'s kernels: the K-quants · Q8_K.
//!
//! In this build their weight bytes are kept in `quant::relaxed_position` order (`packed`'s
//! kernel order) and the activation comes as i8 in the same order (`Q8KActivation::relaxed`):
//! each 16 bytes hold four values of each of four of ggml's eight lane sums. The unsigned
//! weights (0..=63, valid i7) go in as they are, with no widening. Per 32 weights and token:
//! - Q4_K / Q5_K: two i16x8 relaxed dots (each i16 lane two products of one lane of the
//!   sub-block), two i32x4.dot_i16x8 with the sub-block's scale in every lane (each i32 lane the
//!   lane's four products, scaled). Measured faster in workerd than i32x4 relaxed dots and a
//!   multiply by the scale.
//! - Q6_K / Q3_K / Q2_K (`add_sub_block_pair`; values q − 32 / q − 4 / q, scales per 16): two
//!   i16x8 relaxed dots with the unsigned stored values (the two 16-value sub-blocks alternating
//!   in the lanes) minus the same dots with the offset (32 / 4 / none), then two
//!   i32x4.dot_i16x8 with the two scales (Q2_K's mins by the activation's sums, as `simd128`).
//! Every lane sum is the exact integer ggml's generic kernel adds up, and the f32 steps are
//! `simd128`'s (`dot_k_lanes`), so the bits are the scalar kernel's.

use core::arch::wasm32::*;

use super::dot_i8x16_i7x16;
use crate::blocks::{blocks, half, BlockQ2K, BlockQ3K, BlockQ4K, BlockQ5K, BlockQ6K};
use crate::kernels::simd128::kquants::{dot_k_lanes, k4_min_term, k4_scales_and_mins, q2_k_term};
use crate::kernels::simd128::{load, sum_i32x4};
use crate::quant::{Q8KActivation, QK_K};

/// Where super-block b's i8 activation values start, per token; panics unless every token has
/// them (`quant::RELAXED_Q8_K`) for all of its values.
#[inline(always)]
fn relaxed_values<const N: usize>(xs: &[Q8KActivation; N], b: usize) -> [*const u8; N] {
    xs.map(|x| {
        assert!(x.relaxed.len() == x.qs.len());
        x.relaxed[b * QK_K..].as_ptr() as *const u8
    })
}

/// Q4_K's / Q5_K's eight sub-blocks of 32: the nibbles of bytes 32·(s / 2).. (low for even s),
/// with `high(s, v)` (0 or 16 per byte of vector v = 0, 1) or-ed in; per token, the exact lane
/// sums of each sub-block times its scale (u16 lane s of `scales`).
#[inline(always)]
fn k4_lanes<const N: usize>(
    qs: &[u8; 128],
    scales: v128,
    high: impl Fn(usize, usize) -> v128,
    x: [*const u8; N],
) -> [[v128; 2]; N] {
    // SAFETY: a v128 is 16 bytes, any of which make 8 u16.
    let scales: [u16; 8] = unsafe { core::mem::transmute(scales) };
    let mut lanes = [[i32x4_splat(0); 2]; N];
    for chunk in 0..4 {
        // SAFETY: chunk < 4: 32 bytes within qs.
        let bytes = unsafe { [load(qs.as_ptr().add(32 * chunk)), load(qs.as_ptr().add(32 * chunk + 16))] };
        for s in [2 * chunk, 2 * chunk + 1] {
            let scale = i16x8_splat(scales[s] as i16);
            for v in 0..2 {
                let nibbles = if s % 2 == 0 { v128_and(bytes[v], u8x16_splat(15)) } else { u8x16_shr(bytes[v], 4) };
                let weights = v128_or(nibbles, high(s, v));
                for t in 0..N {
                    // SAFETY: sub-block s's 32 values are within the super-block's 256.
                    let values = unsafe { load(x[t].add(32 * s + 16 * v)) };
                    // Each i16 lane: two products of one lane (|·| ≤ 2·128·31); each i32 lane: the
                    // lane's four, times the scale.
                    let sums = i32x4_dot_i16x8(dot_i8x16_i7x16(values, weights), scale);
                    lanes[t][v] = i32x4_add(lanes[t][v], sums);
                }
            }
        }
    }
    lanes
}

pub fn dot_q4_k_q8_k_tokens<const N: usize>(w: &[u8], xs: [Q8KActivation; N]) -> [f32; N] {
    dot_k_lanes(
        w,
        xs,
        |block: &BlockQ4K, b| {
            let (scales, mins) = k4_scales_and_mins(&block.scales);
            let lanes = k4_lanes(&block.qs, scales, |_, _| i8x16_splat(0), relaxed_values(&xs, b));
            (lanes, xs.map(|x| k4_min_term(block.dmin, mins, &x, b)))
        },
        |block| half(block.d),
    )
}

pub fn dot_q5_k_q8_k_tokens<const N: usize>(w: &[u8], xs: [Q8KActivation; N]) -> [f32; N] {
    dot_k_lanes(
        w,
        xs,
        |block: &BlockQ5K, b| {
            let (scales, mins) = k4_scales_and_mins(&block.scales);
            // SAFETY: qh holds 32 bytes.
            let qh = unsafe { [load(block.qh.as_ptr()), load(block.qh.as_ptr().add(16))] };
            // Bit s of each qh byte, as 16.
            let high = |s: usize, v: usize| v128_and(i8x16_shl(u8x16_shr(qh[v], s as u32), 4), u8x16_splat(16));
            let lanes = k4_lanes(&block.qs, scales, high, relaxed_values(&xs, b));
            (lanes, xs.map(|x| k4_min_term(block.dmin, mins, &x, b)))
        },
        |block| half(block.d),
    )
}

/// Adds a 32-value group's two 16-value sub-blocks (values 32g..32g + 32 of the super-block) to
/// each token's lane sums: `weights` (per vector v, u8 values − OFFSET; at most 63) by i16x8 relaxed
/// dots with the token's values, minus OFFSET · their pair sums, then i32x4.dot_i16x8 with
/// `scales` (the two sub-blocks' scales as i16 in every i32 lane). No i16 partial passes 2·128·63.
#[inline(always)]
unsafe fn add_sub_block_pair<const OFFSET: i8, const N: usize>(
    weights: [v128; 2],
    scales: v128,
    x: &[*const u8; N],
    g: usize,
    lanes: &mut [[v128; 2]; N],
) {
    for v in 0..2 {
        for t in 0..N {
            let values = load(x[t].add(32 * g + 16 * v));
            let mut pair_sums = dot_i8x16_i7x16(values, weights[v]);
            if OFFSET != 0 {
                pair_sums = i16x8_sub(pair_sums, dot_i8x16_i7x16(values, i8x16_splat(OFFSET)));
            }
            lanes[t][v] = i32x4_add(lanes[t][v], i32x4_dot_i16x8(pair_sums, scales));
        }
    }
}

/// Sixteen i8 scales (one per 16-value sub-block) as the i32 lanes `add_sub_block_pair` takes:
/// entry g holds sub-blocks 2g and 2g + 1's as two i16.
#[inline(always)]
fn scale_pairs(scales: v128) -> [i32; 8] {
    // SAFETY: a v128 is 16 bytes, any of which make 4 i32.
    unsafe { core::mem::transmute([i16x8_extend_low_i8x16(scales), i16x8_extend_high_i8x16(scales)]) }
}

pub fn dot_q2_k_q8_k_tokens<const N: usize>(w: &[u8], xs: [Q8KActivation; N]) -> [f32; N] {
    let row = blocks::<BlockQ2K>(w);
    let count = xs.iter().fold(row.len(), |m, x| m.min(x.d.len()).min(x.qs.len() / QK_K).min(x.bsums.len() / 16));
    let mut sums = [0.0f32; N];
    for (b, block) in row[..count].iter().enumerate() {
        let x = relaxed_values(&xs, b);
        // SAFETY: the block holds 16 scales; their low nibbles are the scales (0..=15).
        let scales = scale_pairs(v128_and(unsafe { load(block.scales.as_ptr()) }, u8x16_splat(15)));
        // Only the total counts here: the lanes are summed at the end.
        let mut lanes = [[i32x4_splat(0); 2]; N];
        for h in 0..2 {
            // SAFETY: half h's 32 bytes of quants are within the block.
            let q = unsafe { [load(block.qs.as_ptr().add(32 * h)), load(block.qs.as_ptr().add(32 * h + 16))] };
            for j in 0..4 {
                // Values 128h + 32j..+32: bits 2j..2j + 2 of the half's bytes.
                let g = 4 * h + j;
                let weights = q.map(|v| v128_and(u8x16_shr(v, 2 * j as u32), u8x16_splat(3)));
                // SAFETY: the 32 values are within the super-block's 256.
                unsafe { add_sub_block_pair::<0, N>(weights, i32x4_splat(scales[g]), &x, g, &mut lanes) };
            }
        }
        for t in 0..N {
            sums[t] += q2_k_term(block, &xs[t], b, sum_i32x4(i32x4_add(lanes[t][0], lanes[t][1])));
        }
    }
    sums
}

pub fn dot_q3_k_q8_k_tokens<const N: usize>(w: &[u8], xs: [Q8KActivation; N]) -> [f32; N] {
    dot_k_lanes(
        w,
        xs,
        |block: &BlockQ3K, b| {
            let x = relaxed_values(&xs, b);
            let scales: [i8; 16] = block.scales();
            // SAFETY: an [i8; 16] is 16 bytes.
            let scales = scale_pairs(unsafe { load(scales.as_ptr() as *const u8) });
            // SAFETY: the block holds 32 bytes of high bits.
            let hmask = unsafe { [load(block.hmask.as_ptr()), load(block.hmask.as_ptr().add(16))] };
            let mut lanes = [[i32x4_splat(0); 2]; N];
            for h in 0..2 {
                // SAFETY: half h's 32 bytes of quants are within the block.
                let q = unsafe { [load(block.qs.as_ptr().add(32 * h)), load(block.qs.as_ptr().add(32 * h + 16))] };
                for j in 0..4 {
                    // Values 128h + 32j..+32 (group g): 2 bits as Q2_K's, and 4 · bit g of hmask:
                    // value + 4.
                    let g = 4 * h + j;
                    let weights = [0, 1].map(|v| {
                        let low = v128_and(u8x16_shr(q[v], 2 * j as u32), u8x16_splat(3));
                        v128_or(low, v128_and(i8x16_shl(u8x16_shr(hmask[v], g as u32), 2), u8x16_splat(4)))
                    });
                    // SAFETY: the 32 values are within the super-block's 256.
                    unsafe { add_sub_block_pair::<4, N>(weights, i32x4_splat(scales[g]), &x, g, &mut lanes) };
                }
            }
            (lanes, [0.0; N])
        },
        |block| half(block.d),
    )
}

pub fn dot_q6_k_q8_k_tokens<const N: usize>(w: &[u8], xs: [Q8KActivation; N]) -> [f32; N] {
    dot_k_lanes(
        w,
        xs,
        |block: &BlockQ6K, b| {
            let x = relaxed_values(&xs, b);
            // SAFETY: the block holds 16 scales.
            let scales = scale_pairs(unsafe { load(block.scales.as_ptr()) });
            let mut lanes = [[i32x4_splat(0); 2]; N];
            for h in 0..2 {
                // SAFETY: half h's 32 bytes of qh are within the block.
                let qh = unsafe { [load(block.qh.as_ptr().add(32 * h)), load(block.qh.as_ptr().add(32 * h + 16))] };
                for k in 0..4 {
                    // Values 128h + 32k..+32: ql's low (k < 2) or high nibbles of bytes 64h + 32·(k % 2)..,
                    // and bits 2k..2k + 2 of qh moved to 16·(bits): value + 32.
                    // SAFETY: half h's 64 bytes of ql are within the block.
                    let ql = unsafe {
                        let ql = block.ql.as_ptr().add(64 * h + 32 * (k % 2));
                        [load(ql), load(ql.add(16))]
                    };
                    let weights = [0, 1].map(|v| {
                        let low = if k < 2 { v128_and(ql[v], u8x16_splat(15)) } else { u8x16_shr(ql[v], 4) };
                        let placed = match k {
                            0 => i8x16_shl(qh[v], 4),
                            1 => i8x16_shl(qh[v], 2),
                            2 => qh[v],
                            _ => u8x16_shr(qh[v], 2),
                        };
                        v128_or(low, v128_and(placed, u8x16_splat(0x30)))
                    });
                    let g = 4 * h + k;
                    // SAFETY: the 32 values are within the super-block's 256.
                    unsafe { add_sub_block_pair::<32, N>(weights, i32x4_splat(scales[g]), &x, g, &mut lanes) };
                }
            }
            (lanes, [0.0; N])
        },
        |block| half(block.d),
    )
}
