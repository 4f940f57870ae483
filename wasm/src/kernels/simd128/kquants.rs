//! SIMD128 twins of `scalar/kquants.rs`: the K-quants (Q2_K .. Q6_K) · Q8_K.
//!
//! The Q8_K activation keeps each 16 values in pairs (k, k + 8) (`quant::q8_k_position`), so one
//! i32x4.dot_i16x8 lane adds two products of the same lane of ggml's eight lane sums. Weight bytes
//! are kept in that order (`packed`'s kernel order), so a dot over 16 values yields lanes 0..4 of
//! the sums from its first half and 4..8 from its second.

use core::arch::wasm32::*;

use super::{load, sum_i32x4};
use crate::blocks::{blocks, half, Block, BlockQ2K, BlockQ3K, BlockQ4K, BlockQ5K, BlockQ6K};
use crate::quant::{Q8KActivation, QK_K};

/// Sixteen weight bytes at `p` (elements k..k + 16 of a super-block, k a multiple of 16, in the
/// kernel order of `packed`: the activation's pairs) widened to u16 lanes (where shifts by a
/// run-time count are native).
#[inline(always)]
unsafe fn load_pairs(p: *const u8) -> [v128; 2] {
    [u16x8_load_extend_u8x8(p), u16x8_load_extend_u8x8(p.add(8))]
}

/// (v >> shift) & mask in both vectors' u16 lanes.
#[inline(always)]
fn bits(v: [v128; 2], shift: u32, mask: u16) -> [v128; 2] {
    v.map(|v| v128_and(u16x8_shr(v, shift), u16x8_splat(mask)))
}

/// Sixteen i16 weights times their sub-block's scale (`scale` in every i16 lane; the products
/// are at most 31 · 63 or 63 · 128 in magnitude).
#[inline(always)]
fn scaled(weights: [v128; 2], scale: v128) -> [v128; 2] {
    weights.map(|w| i16x8_mul(w, scale))
}

/// Adds 16 scaled weights · the activation values at `x` to a token's eight i32 lane sums
/// (`lanes`: lanes 0..4 and 4..8).
#[inline(always)]
unsafe fn add_16(w: &[v128; 2], x: *const u8, lanes: &mut [v128; 2]) {
    lanes[0] = i32x4_add(lanes[0], i32x4_dot_i16x8(w[0], load(x)));
    lanes[1] = i32x4_add(lanes[1], i32x4_dot_i16x8(w[1], load(x.add(16))));
}

/// `scalar::dot_k_lanes`: per super-block b, `block_lanes(block, b)` gives each token's eight i32
/// lane sums and what the token's running sum loses (Q4_K's / Q5_K's mins); the lanes are scaled
/// by d·dx into eight f32 sums, added to the running sum last, lane by lane.
#[inline(always)]
pub(in crate::kernels) fn dot_k_lanes<B: Block, const N: usize>(
    w: &[u8],
    xs: [Q8KActivation; N],
    block_lanes: impl Fn(&B, usize) -> ([[v128; 2]; N], [f32; N]),
    d: impl Fn(&B) -> f32,
) -> [f32; N] {
    let row = blocks::<B>(w);
    let count = xs.iter().fold(row.len(), |m, x| m.min(x.d.len()).min(x.qs.len() / QK_K).min(x.bsums.len() / 16));
    let (mut lanes, mut sums) = ([[f32x4_splat(0.0); 2]; N], [0.0f32; N]);
    for (b, block) in row[..count].iter().enumerate() {
        let (aux, minus) = block_lanes(block, b);
        for t in 0..N {
            let scale = f32x4_splat(d(block) * xs[t].d[b]);
            for h in 0..2 {
                lanes[t][h] = f32x4_add(lanes[t][h], f32x4_mul(scale, f32x4_convert_i32x4(aux[t][h])));
            }
            sums[t] -= minus[t];
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
                    let weights = scaled(bits(q[half], 2 * j as u32, 3), i16x8_splat((block.scales[i] & 15) as i16));
                    for t in 0..N {
                        // SAFETY: sub-block i is within the super-block's 256 values.
                        unsafe { add_16(&weights, x[t].add(32 * i), &mut isum[t]) };
                    }
                }
            }
        }
        for t in 0..N {
            sums[t] += q2_k_term(block, &xs[t], b, sum_i32x4(i32x4_add(isum[t][0], isum[t][1])));
        }
    }
    sums
}

/// Q2_K's f32 term for super-block b from its exact Σ scale·q·x (`isum`): d·dx·isum minus
/// dmin·dx · Σ_j bsums[j] · min(j), as ggml's generic kernel.
#[inline(always)]
pub(in crate::kernels) fn q2_k_term(block: &BlockQ2K, x: &Q8KActivation, b: usize, isum: i32) -> f32 {
    // SAFETY: the block holds 16 scales.
    let mins = u8x16_shr(unsafe { load(block.scales.as_ptr()) }, 4);
    let mins = [u16x8_extend_low_u8x16(mins), u16x8_extend_high_u8x16(mins)];
    // SAFETY: super-block b's 16 sums are within the activation (callers' count).
    let bsums = unsafe { [0, 16].map(|at| load((x.bsums.as_ptr().add(b * 16) as *const u8).add(at))) };
    let summs = i32x4_add(i32x4_dot_i16x8(bsums[0], mins[0]), i32x4_dot_i16x8(bsums[1], mins[1]));
    let (dall, dmin) = (x.d[b] * half(block.d), x.d[b] * half(block.dmin));
    dall * isum as f32 - dmin * sum_i32x4(summs) as f32
}

pub fn dot_q3_k_q8_k_tokens<const N: usize>(w: &[u8], xs: [Q8KActivation; N]) -> [f32; N] {
    dot_k_lanes(
        w,
        xs,
        |block: &BlockQ3K, b| {
            let x = activation_values(&xs, b);
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
                        let weights = scaled(values, i16x8_splat(scales[i] as i16));
                        for t in 0..N {
                            // SAFETY: sub-block i is within the super-block's 256 values.
                            unsafe { add_16(&weights, x[t].add(32 * i), &mut lanes[t]) };
                        }
                    }
                }
            }
            (lanes, [0.0; N])
        },
        |block| half(block.d),
    )
}

/// Where super-block b's activation values start, per token.
#[inline(always)]
fn activation_values<const N: usize>(xs: &[Q8KActivation; N], b: usize) -> [*const u8; N] {
    xs.map(|x| x.qs[b * QK_K..].as_ptr() as *const u8)
}

/// Q4_K's and Q5_K's eight sub-blocks of 32: the nibbles of bytes 32·(s / 2).. (low for even s),
/// with `high(s, k)` (0 or 16 per element of its 16 bytes k = 0, 1, in kernel order) or-ed in,
/// times sub-block s's scale (i16 lane s of `scales`).
#[inline(always)]
fn k4_lanes<const N: usize>(
    qs: &[u8; 128],
    scales: v128,
    high: impl Fn(usize, usize) -> [v128; 2],
    x: [*const u8; N],
) -> [[v128; 2]; N] {
    let mut lanes = [[i32x4_splat(0); 2]; N];
    // Sub-block s from its 32 values as two times 16 u16 lanes.
    let mut add_sub_block = |s: usize, values: [[v128; 2]; 2], scale: v128| {
        for (k, values) in values.iter().enumerate() {
            let high = high(s, k);
            let weights = scaled([v128_or(values[0], high[0]), v128_or(values[1], high[1])], scale);
            for t in 0..N {
                // SAFETY: the 16 values are within the super-block's 256.
                unsafe { add_16(&weights, x[t].add(64 * s + 32 * k), &mut lanes[t]) };
            }
        }
    };
    macro_rules! chunk {
        ($chunk:literal, $even:literal, $odd:literal) => {{
            // SAFETY: chunk < 4: 32 bytes within qs.
            let bytes =
                unsafe { [load_pairs(qs.as_ptr().add(32 * $chunk)), load_pairs(qs.as_ptr().add(32 * $chunk + 16))] };
            let (even, odd) = (broadcast_i16::<$even>(scales), broadcast_i16::<$odd>(scales));
            add_sub_block(2 * $chunk, bytes.map(|b| b.map(|v| v128_and(v, u16x8_splat(15)))), even);
            add_sub_block(2 * $chunk + 1, bytes.map(|b| b.map(|v| u16x8_shr(v, 4))), odd);
        }};
    }
    chunk!(0, 0, 1);
    chunk!(1, 2, 3);
    chunk!(2, 4, 5);
    chunk!(3, 6, 7);
    lanes
}

/// i16 lane L of `v` in every lane.
#[inline(always)]
fn broadcast_i16<const L: usize>(v: v128) -> v128 {
    // Lane indices past 7 only name lane L of the second operand, the same vector.
    match L {
        0 => i16x8_shuffle::<0, 0, 0, 0, 0, 0, 0, 0>(v, v),
        1 => i16x8_shuffle::<1, 1, 1, 1, 1, 1, 1, 1>(v, v),
        2 => i16x8_shuffle::<2, 2, 2, 2, 2, 2, 2, 2>(v, v),
        3 => i16x8_shuffle::<3, 3, 3, 3, 3, 3, 3, 3>(v, v),
        4 => i16x8_shuffle::<4, 4, 4, 4, 4, 4, 4, 4>(v, v),
        5 => i16x8_shuffle::<5, 5, 5, 5, 5, 5, 5, 5>(v, v),
        6 => i16x8_shuffle::<6, 6, 6, 6, 6, 6, 6, 6>(v, v),
        _ => i16x8_shuffle::<7, 7, 7, 7, 7, 7, 7, 7>(v, v),
    }
}

/// Q4_K's / Q5_K's twelve bytes of 6-bit scales and mins (`blocks::scales_and_mins`, as ggml
/// unpacks them four at a time in u32 words): the eight scales and the eight mins as i16 lanes.
#[inline(always)]
pub(in crate::kernels) fn k4_scales_and_mins(q: &[u8; 12]) -> (v128, v128) {
    let word = |i: usize| u32::from_le_bytes([q[4 * i], q[4 * i + 1], q[4 * i + 2], q[4 * i + 3]]);
    let (a, b, c) = (word(0), word(1), word(2));
    let (low6, nibbles, top2) = (0x3f3f_3f3f, 0x0f0f_0f0f, 0x0303_0303);
    let scales = [a & low6, (c & nibbles) | (((a >> 6) & top2) << 4)];
    let mins = [b & low6, ((c >> 4) & nibbles) | (((b >> 6) & top2) << 4)];
    let bytes = u32x4(scales[0], scales[1], mins[0], mins[1]);
    (u16x8_extend_low_u8x16(bytes), u16x8_extend_high_u8x16(bytes))
}

/// Q4_K's / Q5_K's min term for super-block b (`scalar::min_term`): dmin·dx · Σ_j bsums[j] · min(j / 2),
/// the integer sum by two i32x4.dot_i16x8 with each min twice.
#[inline(always)]
pub(in crate::kernels) fn k4_min_term(dmin: [u8; 2], mins: v128, x: &Q8KActivation, b: usize) -> f32 {
    let pairs = [
        i16x8_shuffle::<0, 0, 1, 1, 2, 2, 3, 3>(mins, mins),
        i16x8_shuffle::<4, 4, 5, 5, 6, 6, 7, 7>(mins, mins),
    ];
    let bsums = &x.bsums[b * 16..][..16];
    // SAFETY: bsums holds 16 i16.
    let sums = unsafe { [load(bsums.as_ptr() as *const u8), load(bsums.as_ptr().add(8) as *const u8)] };
    let sumi = sum_i32x4(i32x4_add(i32x4_dot_i16x8(sums[0], pairs[0]), i32x4_dot_i16x8(sums[1], pairs[1])));
    half(dmin) * x.d[b] * sumi as f32
}

pub fn dot_q4_k_q8_k_tokens<const N: usize>(w: &[u8], xs: [Q8KActivation; N]) -> [f32; N] {
    dot_k_lanes(
        w,
        xs,
        |block: &BlockQ4K, b| {
            let (scales, mins) = k4_scales_and_mins(&block.scales);
            let lanes = k4_lanes(&block.qs, scales, |_, _| [i16x8_splat(0); 2], activation_values(&xs, b));
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
            let qh = unsafe { [load_pairs(block.qh.as_ptr()), load_pairs(block.qh.as_ptr().add(16))] };
            // Bit s of each qh byte, as 16.
            let high = |s: usize, k: usize| bits(qh[k], s as u32, 1).map(|b| i16x8_shl(b, 4));
            let lanes = k4_lanes(&block.qs, scales, high, activation_values(&xs, b));
            (lanes, xs.map(|x| k4_min_term(block.dmin, mins, &x, b)))
        },
        |block| half(block.d),
    )
}

pub fn dot_q6_k_q8_k_tokens<const N: usize>(w: &[u8], xs: [Q8KActivation; N]) -> [f32; N] {
    dot_k_lanes(
        w,
        xs,
        |block: &BlockQ6K, b| {
            let x = activation_values(&xs, b);
            // SAFETY: the block holds 16 scales.
            let scales = unsafe { load(block.scales.as_ptr()) };
            let scales = [i16x8_extend_low_i8x16(scales), i16x8_extend_high_i8x16(scales)];
            let mut lanes = [[i32x4_splat(0); 2]; N];
            macro_rules! sub_block_pair {
                ($h:literal, $k:literal, $first:literal, $second:literal) => {{
                    // Sub-blocks 8h + 2k and 8h + 2k + 1: ql's low (k < 2) or high nibbles of bytes 0..
                    // (even k) or 32.., and bits 2k..2k + 2 of qh (moved to 16·(bits)), minus 32; the
                    // first or second 16 of each.
                    // SAFETY: half h's 64 bytes of ql and 32 of qh are within the block.
                    let (ql, qh) = unsafe {
                        let (ql, qh) = (block.ql.as_ptr().add(64 * $h + 32 * ($k % 2)), block.qh.as_ptr().add(32 * $h));
                        ([load_pairs(ql), load_pairs(ql.add(16))], [load_pairs(qh), load_pairs(qh.add(16))])
                    };
                    let scale = [broadcast_i16::<$first>(scales[$h]), broadcast_i16::<$second>(scales[$h])];
                    for half in 0..2 {
                        let low = ql[half].map(|v| if $k < 2 { v128_and(v, u16x8_splat(15)) } else { u16x8_shr(v, 4) });
                        let high = qh[half].map(|v| {
                            let placed = match $k {
                                0 => u16x8_shl(v, 4),
                                1 => u16x8_shl(v, 2),
                                2 => v,
                                _ => u16x8_shr(v, 2),
                            };
                            v128_and(placed, u16x8_splat(0x30))
                        });
                        let values = [0, 1].map(|v| i16x8_sub(v128_or(low[v], high[v]), i16x8_splat(32)));
                        let weights = scaled(values, scale[half]);
                        for t in 0..N {
                            // SAFETY: sub-block 8h + 2k + half is within the super-block's 256 values.
                            unsafe { add_16(&weights, x[t].add(32 * (8 * $h + 2 * $k + half)), &mut lanes[t]) };
                        }
                    }
                }};
            }
            sub_block_pair!(0, 0, 0, 1);
            sub_block_pair!(0, 1, 2, 3);
            sub_block_pair!(0, 2, 4, 5);
            sub_block_pair!(0, 3, 6, 7);
            sub_block_pair!(1, 0, 0, 1);
            sub_block_pair!(1, 1, 2, 3);
            sub_block_pair!(1, 2, 4, 5);
            sub_block_pair!(1, 3, 6, 7);
            (lanes, [0.0; N])
        },
        |block| half(block.d),
    )
}
