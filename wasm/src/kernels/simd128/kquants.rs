//! SIMD128 twins of `scalar/kquants.rs`: the K-quants (Q2_K .. Q6_K) · Q8_K.
//!
//! The Q8_K activation keeps each 16 values in pairs (k, k + 8) (`quant::q8_k_position`), so one
//! i32x4.dot_i16x8 lane adds two products of the same lane of ggml's eight lane sums. Weight bytes
//! are put in that order by one shuffle (`load_pairs`), then a dot over 16 values yields lanes 0..4 of
//! the sums from its first half and 4..8 from its second.

use core::arch::wasm32::*;

use super::{load, sum_i32x4};
use crate::blocks::{blocks, half, scales_and_mins, Block, BlockQ2K, BlockQ3K, BlockQ4K, BlockQ5K, BlockQ6K};
use crate::kernels::scalar::min_term;
use crate::quant::{Q8KActivation, QK_K};

/// Sixteen weight bytes at `p` (elements k..k + 16 of a super-block, k a multiple of 16) in the
/// activation's pair order, widened to u16 lanes (where shifts by a run-time count are native).
#[inline(always)]
unsafe fn load_pairs(p: *const u8) -> [v128; 2] {
    let bytes = load(p);
    let paired = i8x16_shuffle::<0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15>(bytes, bytes);
    [u16x8_extend_low_u8x16(paired), u16x8_extend_high_u8x16(paired)]
}

/// (v >> shift) & mask in both vectors' u16 lanes.
#[inline(always)]
fn bits(v: [v128; 2], shift: u32, mask: u16) -> [v128; 2] {
    v.map(|v| v128_and(u16x8_shr(v, shift), u16x8_splat(mask)))
}

/// Sixteen i16 weights times their sub-block's scale (at most 31 · 63 in magnitude).
#[inline(always)]
fn scaled(weights: [v128; 2], scale: i32) -> [v128; 2] {
    let scale = i16x8_splat(scale as i16);
    weights.map(|w| i16x8_mul(w, scale))
}

/// Adds 16 scaled weights · the activation values at `x` to a token's eight i32 lane sums
/// (`lanes`: lanes 0..4 and 4..8).
#[inline(always)]
unsafe fn add_16(w: &[v128; 2], x: *const u8, lanes: &mut [v128; 2]) {
    lanes[0] = i32x4_add(lanes[0], i32x4_dot_i16x8(w[0], load(x)));
    lanes[1] = i32x4_add(lanes[1], i32x4_dot_i16x8(w[1], load(x.add(16))));
}

/// `scalar::dot_k_lanes`: per super-block, `block_lanes` adds each token's eight i32 lane sums
/// (given the pointers to that super-block's activation values), which are scaled by d·dx into
/// eight f32 sums; `minus` is what the token's running sum loses; the eight f32 sums are added
/// to the running sum last, lane by lane.
#[inline(always)]
fn dot_k_lanes<B: Block, const N: usize>(
    w: &[u8],
    xs: [Q8KActivation; N],
    block_lanes: impl Fn(&B, [*const u8; N]) -> [[v128; 2]; N],
    minus: impl Fn(&B, &Q8KActivation, usize) -> f32,
    d: impl Fn(&B) -> f32,
) -> [f32; N] {
    let row = blocks::<B>(w);
    let count = xs.iter().fold(row.len(), |m, x| m.min(x.d.len()).min(x.qs.len() / QK_K).min(x.bsums.len() / 16));
    let (mut lanes, mut sums) = ([[f32x4_splat(0.0); 2]; N], [0.0f32; N]);
    for (b, block) in row[..count].iter().enumerate() {
        let x_qs = xs.map(|x| x.qs[b * QK_K..].as_ptr() as *const u8);
        let aux = block_lanes(block, x_qs);
        for t in 0..N {
            let scale = f32x4_splat(d(block) * xs[t].d[b]);
            for h in 0..2 {
                lanes[t][h] = f32x4_add(lanes[t][h], f32x4_mul(scale, f32x4_convert_i32x4(aux[t][h])));
            }
            sums[t] -= minus(block, &xs[t], b);
        }
    }
    core::array::from_fn(|t| {
        let [low, high] = lanes[t];
        let sum = sums[t] + f32x4_extract_lane::<0>(low) + f32x4_extract_lane::<1>(low);
        let sum = sum + f32x4_extract_lane::<2>(low) + f32x4_extract_lane::<3>(low);
        let sum = sum + f32x4_extract_lane::<0>(high) + f32x4_extract_lane::<1>(high);
        sum + f32x4_extract_lane::<2>(high) + f32x4_extract_lane::<3>(high)
    })
}

pub fn dot_q2_k_q8_k_tokens<const N: usize>(w: &[u8], xs: [Q8KActivation; N]) -> [f32; N] {
    let row = blocks::<BlockQ2K>(w);
    let count = xs.iter().fold(row.len(), |m, x| m.min(x.d.len()).min(x.qs.len() / QK_K).min(x.bsums.len() / 16));
    let mut sums = [0.0f32; N];
    for (b, block) in row[..count].iter().enumerate() {
        let x = xs.map(|x| x.qs[b * QK_K..].as_ptr() as *const u8);
        // Only the total counts here: the lanes are summed at the end.
        let mut isum = [[i32x4_splat(0); 2]; N];
        for h in 0..2 {
            // SAFETY: half h's 32 bytes of quants are within the block.
            let q =
                unsafe { [load_pairs(block.qs.as_ptr().add(32 * h)), load_pairs(block.qs.as_ptr().add(32 * h + 16))] };
            for j in 0..4 {
                for half in 0..2 {
                    // Sub-block i: bits 2j..2j + 2 of the half's first or second 16 bytes.
                    let i = 8 * h + 2 * j + half;
                    let weights = scaled(bits(q[half], 2 * j as u32, 3), (block.scales[i] & 15) as i32);
                    for t in 0..N {
                        // SAFETY: sub-block i is within the super-block's 256 values.
                        unsafe { add_16(&weights, x[t].add(32 * i), &mut isum[t]) };
                    }
                }
            }
        }
        // SAFETY: the block holds 16 scales.
        let mins = u8x16_shr(unsafe { load(block.scales.as_ptr()) }, 4);
        let mins = [u16x8_extend_low_u8x16(mins), u16x8_extend_high_u8x16(mins)];
        for t in 0..N {
            // SAFETY: super-block b's 16 sums are within the activation.
            let bsums = unsafe { [0, 16].map(|at| load((xs[t].bsums.as_ptr().add(b * 16) as *const u8).add(at))) };
            let summs = i32x4_add(i32x4_dot_i16x8(bsums[0], mins[0]), i32x4_dot_i16x8(bsums[1], mins[1]));
            let (dall, dmin) = (xs[t].d[b] * half(block.d), xs[t].d[b] * half(block.dmin));
            let isum = sum_i32x4(i32x4_add(isum[t][0], isum[t][1]));
            sums[t] += dall * isum as f32 - dmin * sum_i32x4(summs) as f32;
        }
    }
    sums
}

pub fn dot_q3_k_q8_k_tokens<const N: usize>(w: &[u8], xs: [Q8KActivation; N]) -> [f32; N] {
    dot_k_lanes(
        w,
        xs,
        |block: &BlockQ3K, x| {
            let scales = block.scales();
            // SAFETY: the block holds 32 bytes of high bits.
            let hmask = unsafe { [load_pairs(block.hmask.as_ptr()), load_pairs(block.hmask.as_ptr().add(16))] };
            let mut lanes = [[i32x4_splat(0); 2]; N];
            for h in 0..2 {
                // SAFETY: half h's 32 bytes of quants are within the block.
                let q = unsafe {
                    [load_pairs(block.qs.as_ptr().add(32 * h)), load_pairs(block.qs.as_ptr().add(32 * h + 16))]
                };
                for j in 0..4 {
                    for half in 0..2 {
                        // Sub-block i: 2 bits as Q2_K's, high bit 4h + j of hmask's first or second 16 bytes;
                        // minus 4 without it.
                        let i = 8 * h + 2 * j + half;
                        let (low, high) = (bits(q[half], 2 * j as u32, 3), bits(hmask[half], (4 * h + j) as u32, 1));
                        let values = [0, 1].map(|v| i16x8_sub(v128_or(low[v], i16x8_shl(high[v], 2)), i16x8_splat(4)));
                        let weights = scaled(values, scales[i] as i32);
                        for t in 0..N {
                            // SAFETY: sub-block i is within the super-block's 256 values.
                            unsafe { add_16(&weights, x[t].add(32 * i), &mut lanes[t]) };
                        }
                    }
                }
            }
            lanes
        },
        |_, _, _| 0.0,
        |block| half(block.d),
    )
}

/// Q4_K's and Q5_K's eight sub-blocks of 32: the nibbles of bytes 32·(s / 2).. (low for even s),
/// with `high(s, k)` (0 or 16 per element of its 16 bytes k = 0, 1, as `load_pairs` gives them)
/// or-ed in.
#[inline(always)]
fn k4_lanes<const N: usize>(
    qs: &[u8; 128],
    scales: &[u8; 8],
    high: impl Fn(usize, usize) -> [v128; 2],
    x: [*const u8; N],
) -> [[v128; 2]; N] {
    let mut lanes = [[i32x4_splat(0); 2]; N];
    // Sub-block s from its 32 values as two times 16 u16 lanes.
    let mut add_sub_block = |s: usize, values: [[v128; 2]; 2]| {
        for (k, values) in values.iter().enumerate() {
            let high = high(s, k);
            let weights = scaled([v128_or(values[0], high[0]), v128_or(values[1], high[1])], scales[s] as i32);
            for t in 0..N {
                // SAFETY: the 16 values are within the super-block's 256.
                unsafe { add_16(&weights, x[t].add(64 * s + 32 * k), &mut lanes[t]) };
            }
        }
    };
    for chunk in 0..4 {
        // SAFETY: chunk < 4: 32 bytes within qs.
        let bytes = unsafe { [load_pairs(qs.as_ptr().add(32 * chunk)), load_pairs(qs.as_ptr().add(32 * chunk + 16))] };
        add_sub_block(2 * chunk, bytes.map(|b| b.map(|v| v128_and(v, u16x8_splat(15)))));
        add_sub_block(2 * chunk + 1, bytes.map(|b| b.map(|v| u16x8_shr(v, 4))));
    }
    lanes
}

pub fn dot_q4_k_q8_k_tokens<const N: usize>(w: &[u8], xs: [Q8KActivation; N]) -> [f32; N] {
    dot_k_lanes(
        w,
        xs,
        |block: &BlockQ4K, x| {
            let (scales, _) = scales_and_mins(&block.scales);
            k4_lanes(&block.qs, &scales, |_, _| [i16x8_splat(0); 2], x)
        },
        |block, x, b| min_term(block.dmin, &scales_and_mins(&block.scales).1, x, b),
        |block| half(block.d),
    )
}

pub fn dot_q5_k_q8_k_tokens<const N: usize>(w: &[u8], xs: [Q8KActivation; N]) -> [f32; N] {
    dot_k_lanes(
        w,
        xs,
        |block: &BlockQ5K, x| {
            let (scales, _) = scales_and_mins(&block.scales);
            // SAFETY: qh holds 32 bytes.
            let qh = unsafe { [load_pairs(block.qh.as_ptr()), load_pairs(block.qh.as_ptr().add(16))] };
            // Bit s of each qh byte, as 16.
            let high = |s: usize, k: usize| bits(qh[k], s as u32, 1).map(|b| i16x8_shl(b, 4));
            k4_lanes(&block.qs, &scales, high, x)
        },
        |block, x, b| min_term(block.dmin, &scales_and_mins(&block.scales).1, x, b),
        |block| half(block.d),
    )
}

pub fn dot_q6_k_q8_k_tokens<const N: usize>(w: &[u8], xs: [Q8KActivation; N]) -> [f32; N] {
    dot_k_lanes(
        w,
        xs,
        |block: &BlockQ6K, x| {
            let mut lanes = [[i32x4_splat(0); 2]; N];
            for h in 0..2 {
                // SAFETY: half h's 64 bytes of ql and 32 of qh are within the block.
                let (ql, qh) = unsafe {
                    let (ql, qh) = (block.ql.as_ptr().add(64 * h), block.qh.as_ptr().add(32 * h));
                    ([0, 16, 32, 48].map(|at| load_pairs(ql.add(at))), [load_pairs(qh), load_pairs(qh.add(16))])
                };
                for k in 0..4 {
                    for half in 0..2 {
                        // Sub-block i: ql's low (k < 2) or high nibbles of bytes 0.. (even k) or 32..,
                        // bits 2k..2k + 2 of qh; the first or second 16 of them.
                        let i = 8 * h + 2 * k + half;
                        let low = bits(ql[2 * (k % 2) + half], 4 * (k / 2) as u32, 15);
                        let high = bits(qh[half], 2 * k as u32, 3);
                        let values = [0, 1].map(|v| i16x8_sub(v128_or(low[v], i16x8_shl(high[v], 4)), i16x8_splat(32)));
                        let weights = scaled(values, block.scales[i] as i8 as i32);
                        for t in 0..N {
                            // SAFETY: sub-block i is within the super-block's 256 values.
                            unsafe { add_16(&weights, x[t].add(32 * i), &mut lanes[t]) };
                        }
                    }
                }
            }
            lanes
        },
        |_, _, _| 0.0,
        |block| half(block.d),
    )
}
