//! WebAssembly SIMD128 twins of `scalar.rs` (same names and inputs).
//!
//! Quantized dots: wasm has no i8 dot instruction, so weights are sign-extended
//! to i16 (once per block for all the tokens of a batch) and multiplied with the
//! (already i16) activation by i32x4.dot_i16x8. Each block's integer sum is
//! exact, so the only difference from the scalar kernels is the order in which
//! the per-block f32 terms `sumi * (dw * dx)` are added (4 lanes, then tail).

use core::arch::wasm32::*;

use crate::quant::{block_scale, Q8Activation, Q4_0_BLOCK_BYTES, Q8_0_BLOCK_BYTES, QK};

#[inline(always)]
unsafe fn load(p: *const u8) -> v128 {
    core::ptr::read_unaligned(p as *const v128)
}

#[inline(always)]
fn sum_f32x4(v: v128) -> f32 {
    let pairs = f32x4_add(v, i32x4_shuffle::<2, 3, 0, 1>(v, v));
    let total = f32x4_add(pairs, i32x4_shuffle::<1, 0, 3, 2>(pairs, pairs));
    f32x4_extract_lane::<0>(total)
}

#[inline(always)]
fn sum_i32x4(v: v128) -> i32 {
    let pairs = i32x4_add(v, i32x4_shuffle::<2, 3, 0, 1>(v, v));
    let total = i32x4_add(pairs, i32x4_shuffle::<1, 0, 3, 2>(pairs, pairs));
    i32x4_extract_lane::<0>(total)
}

/// Half of reducing two i32x4 vectors a, b: lanes [a0+a2, b0+b2, a1+a3, b1+b3].
#[inline(always)]
fn pair_sums(a: v128, b: v128) -> v128 {
    i32x4_add(i32x4_shuffle::<0, 4, 1, 5>(a, b), i32x4_shuffle::<2, 6, 3, 7>(a, b))
}

/// [Σ a, Σ b, Σ c, Σ d] from `pair_sums(a, b)` and `pair_sums(c, d)`.
#[inline(always)]
fn sums_of_pairs(ab: v128, cd: v128) -> v128 {
    i32x4_add(i32x4_shuffle::<0, 1, 4, 5>(ab, cd), i32x4_shuffle::<2, 3, 6, 7>(ab, cd))
}

/// Four halves (one per u32 lane) to f32, exactly as `f16::f16_to_f32`.
#[inline(always)]
fn f16x4_to_f32x4(h: v128) -> v128 {
    let sign = i32x4_shl(v128_and(h, u32x4_splat(0x8000)), 16);
    let magnitude = v128_and(h, u32x4_splat(0x7fff));
    let shifted = i32x4_shl(magnitude, 13);
    let finite = f32x4_mul(shifted, f32x4_splat(5.192_297e33)); // × 2^112
    let special = v128_or(shifted, u32x4_splat(0x7f80_0000));
    let is_special = i32x4_gt(magnitude, i32x4_splat(0x7bff));
    v128_or(v128_bitselect(special, finite, is_special), sign)
}

pub fn dot_f32(w: &[f32], x: &[f32]) -> f32 {
    let n = w.len().min(x.len());
    let body = n - n % 8;
    let (mut acc0, mut acc1) = (f32x4_splat(0.0), f32x4_splat(0.0));
    let (wp, xp) = (w.as_ptr() as *const u8, x.as_ptr() as *const u8);
    let mut i = 0;
    while i < body {
        // SAFETY: i + 8 ≤ n elements on both sides.
        unsafe {
            let o = i * 4;
            acc0 = f32x4_add(acc0, f32x4_mul(load(wp.add(o)), load(xp.add(o))));
            acc1 = f32x4_add(acc1, f32x4_mul(load(wp.add(o + 16)), load(xp.add(o + 16))));
        }
        i += 8;
    }
    let tail: f32 = w[body..n].iter().zip(&x[body..n]).fold(0.0, |s, (a, b)| s + a * b);
    sum_f32x4(f32x4_add(acc0, acc1)) + tail
}

pub fn dot_f16(w: &[u16], x: &[f32]) -> f32 {
    let n = w.len().min(x.len());
    let body = n - n % 8;
    let (mut acc0, mut acc1) = (f32x4_splat(0.0), f32x4_splat(0.0));
    let (wp, xp) = (w.as_ptr() as *const u8, x.as_ptr() as *const u8);
    let mut i = 0;
    while i < body {
        // SAFETY: i + 8 ≤ n elements on both sides.
        unsafe {
            let halves = load(wp.add(i * 2));
            let w0 = f16x4_to_f32x4(u32x4_extend_low_u16x8(halves));
            let w1 = f16x4_to_f32x4(u32x4_extend_high_u16x8(halves));
            acc0 = f32x4_add(acc0, f32x4_mul(w0, load(xp.add(i * 4))));
            acc1 = f32x4_add(acc1, f32x4_mul(w1, load(xp.add(i * 4 + 16))));
        }
        i += 8;
    }
    let tail = super::scalar::dot_f16(&w[body..n], &x[body..n]);
    sum_f32x4(f32x4_add(acc0, acc1)) + tail
}

/// One Q8_0 block's 32 weights as four i16x8 vectors, in element order.
#[inline(always)]
unsafe fn unpack_q8_0(w: *const u8) -> [v128; 4] {
    let (w0, w1) = (load(w), load(w.add(16)));
    [i16x8_extend_low_i8x16(w0), i16x8_extend_high_i8x16(w0), i16x8_extend_low_i8x16(w1), i16x8_extend_high_i8x16(w1)]
}

/// Same for Q4_0: byte j holds element j (low nibble) and j + 16 (high nibble), each minus 8.
#[inline(always)]
unsafe fn unpack_q4_0(w: *const u8) -> [v128; 4] {
    let packed = load(w);
    let eight = i8x16_splat(8);
    let low = i8x16_sub(v128_and(packed, u8x16_splat(15)), eight);
    let high = i8x16_sub(u8x16_shr(packed, 4), eight);
    [
        i16x8_extend_low_i8x16(low),
        i16x8_extend_high_i8x16(low),
        i16x8_extend_low_i8x16(high),
        i16x8_extend_high_i8x16(high),
    ]
}

/// i32x4 lanes summing to one block's Σ w·x: the unpacked i16 weights times the
/// block's 32 i16 activation values at `x`, pair-summed by i32x4.dot_i16x8.
#[inline(always)]
unsafe fn block_sum(w: &[v128; 4], x: *const u8) -> v128 {
    let first = i32x4_add(i32x4_dot_i16x8(w[0], load(x)), i32x4_dot_i16x8(w[1], load(x.add(16))));
    let second = i32x4_add(i32x4_dot_i16x8(w[2], load(x.add(32))), i32x4_dot_i16x8(w[3], load(x.add(48))));
    i32x4_add(first, second)
}

/// Shared block loop for N tokens. Four blocks per step: each block's weights are
/// unpacked once and dotted against every token, whose four i32 sums reduce into one
/// vector scaled by four (dw · dx) products (the weight scales widened once) and added
/// to that token's accumulator. Leftover blocks go one by one. Each token's f32 steps
/// do not depend on N, so a batched matmul gives the single-token results bit for bit.
#[inline(always)]
fn dot_blocks<const N: usize>(
    w: &[u8],
    block_bytes: usize,
    xs: [Q8Activation; N],
    unpack: unsafe fn(*const u8) -> [v128; 4],
) -> [f32; N] {
    let blocks = xs.iter().fold(w.len() / block_bytes, |m, x| m.min(x.scales.len()).min(x.qs.len() / QK));
    let wp = w.as_ptr();
    let (x_qs, x_scales) = (xs.map(|x| x.qs.as_ptr() as *const u8), xs.map(|x| x.scales.as_ptr()));
    // SAFETY (for the closures' callers): block b < blocks is within w and every activation.
    let weights = |b: usize| unsafe { unpack(wp.add(b * block_bytes + 2)) };
    let sum = |unpacked: &[v128; 4], t: usize, b: usize| unsafe { block_sum(unpacked, x_qs[t].add(b * QK * 2)) };
    let mut acc = [f32x4_splat(0.0); N];
    let mut b = 0;
    while b + 4 <= blocks {
        // Block by block, so that few vectors are live at once; per token, blocks b and b + 1
        // are half-reduced into `low`, then b + 2 and b + 3 finish the four sums.
        let (mut first, mut low) = ([i32x4_splat(0); N], [i32x4_splat(0); N]);
        let unpacked = weights(b);
        for t in 0..N {
            first[t] = sum(&unpacked, t, b);
        }
        let unpacked = weights(b + 1);
        for t in 0..N {
            low[t] = pair_sums(first[t], sum(&unpacked, t, b + 1));
        }
        let unpacked = weights(b + 2);
        for t in 0..N {
            first[t] = sum(&unpacked, t, b + 2);
        }
        // SAFETY: the four scale halves of blocks b..b + 4 are within w.
        let half = |k: usize| unsafe { core::ptr::read_unaligned(wp.add((b + k) * block_bytes) as *const u16) } as u32;
        // The same f32 products as the scalar `block_scale(block) * dx`.
        let w_scales = f16x4_to_f32x4(u32x4(half(0), half(1), half(2), half(3)));
        let unpacked = weights(b + 3);
        for t in 0..N {
            let sums = sums_of_pairs(low[t], pair_sums(first[t], sum(&unpacked, t, b + 3)));
            // SAFETY: scales b..b + 4 are within every activation.
            let scales = f32x4_mul(w_scales, unsafe { load(x_scales[t].add(b) as *const u8) });
            acc[t] = f32x4_add(acc[t], f32x4_mul(f32x4_convert_i32x4(sums), scales));
        }
        b += 4;
    }
    let mut tail = [0.0f32; N];
    while b < blocks {
        let unpacked = weights(b);
        let dw = block_scale(&w[b * block_bytes..]);
        for t in 0..N {
            tail[t] += sum_i32x4(sum(&unpacked, t, b)) as f32 * (dw * xs[t].scales[b]);
        }
        b += 1;
    }
    let mut out = [0.0f32; N];
    for t in 0..N {
        out[t] = sum_f32x4(acc[t]) + tail[t];
    }
    out
}

pub fn dot_q8_0_q8_0(w: &[u8], x: Q8Activation) -> f32 {
    dot_q8_0_q8_0_tokens(w, [x])[0]
}

pub fn dot_q4_0_q8_0(w: &[u8], x: Q8Activation) -> f32 {
    dot_q4_0_q8_0_tokens(w, [x])[0]
}

pub fn dot_q8_0_q8_0_tokens<const N: usize>(w: &[u8], xs: [Q8Activation; N]) -> [f32; N] {
    dot_blocks(w, Q8_0_BLOCK_BYTES, xs, unpack_q8_0)
}

pub fn dot_q4_0_q8_0_tokens<const N: usize>(w: &[u8], xs: [Q8Activation; N]) -> [f32; N] {
    dot_blocks(w, Q4_0_BLOCK_BYTES, xs, unpack_q4_0)
}

pub fn axpy_f32(y: &mut [f32], a: f32, x: &[f32]) {
    let n = y.len().min(x.len());
    let body = n - n % 4;
    let av = f32x4_splat(a);
    let (yp, xp) = (y.as_mut_ptr() as *mut u8, x.as_ptr() as *const u8);
    let mut i = 0;
    while i < body {
        // SAFETY: i + 4 ≤ n elements on both sides.
        unsafe {
            let sum = f32x4_add(load(yp.add(i * 4)), f32x4_mul(av, load(xp.add(i * 4))));
            core::ptr::write_unaligned(yp.add(i * 4) as *mut v128, sum);
        }
        i += 4;
    }
    super::scalar::axpy_f32(&mut y[body..n], a, &x[body..n]);
}

pub fn axpy_f16(y: &mut [f32], a: f32, x: &[u16]) {
    let n = y.len().min(x.len());
    let body = n - n % 4;
    let av = f32x4_splat(a);
    let (yp, xp) = (y.as_mut_ptr() as *mut u8, x.as_ptr() as *const u8);
    let mut i = 0;
    while i < body {
        // SAFETY: i + 4 ≤ n elements on both sides (8 bytes of halves read as the low half of a v128).
        unsafe {
            let four_halves = core::ptr::read_unaligned(xp.add(i * 2) as *const u64);
            let halves = u32x4_extend_low_u16x8(u64x2(four_halves, 0));
            let sum = f32x4_add(load(yp.add(i * 4)), f32x4_mul(av, f16x4_to_f32x4(halves)));
            core::ptr::write_unaligned(yp.add(i * 4) as *mut v128, sum);
        }
        i += 4;
    }
    super::scalar::axpy_f16(&mut y[body..n], a, &x[body..n]);
}
