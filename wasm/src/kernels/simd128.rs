//! WebAssembly SIMD128 twins of `scalar.rs` (same names and inputs).
//!
//! Quantized dots: wasm has no i8 dot instruction, so weights are widened to i16 (once per
//! block for all the tokens of a batch) and multiplied with the (already i16) activation, by
//! i32x4.dot_i16x8 where only a block's total counts, lane by lane where ggml's K-quant kernels
//! keep eight lane sums. Every integer sum is exact and the f32 steps are the scalar kernels'
//! (ggml's generic order), so both give the same bits.

use core::arch::wasm32::*;

use super::scalar::Block32;
use crate::blocks::{blocks, BlockQ4_0, BlockQ4_1, BlockQ5_0, BlockQ5_1, BlockQ8_0};
use crate::f16::{bf16_to_f32, f16_to_f32, f32_to_f16, MAX_FINITE, PLACED_MASK, REBIAS};
use crate::packed::{plane_bit, GroupLayout, ROWS};
use crate::quant::{
    Q8Activation, Q8ActivationMut, Q8KActivationMut, Quantizers, Q4_0_BLOCK_BYTES, Q8_0_BLOCK_BYTES, QK, QK_K,
};

pub(super) mod kquants;
pub use kquants::*;

pub const QUANTIZERS: Quantizers = Quantizers { q8: quantize_q8_0, q8_k: quantize_q8_k };

#[inline(always)]
pub(super) unsafe fn load(p: *const u8) -> v128 {
    core::ptr::read_unaligned(p as *const v128)
}

#[inline(always)]
fn sum_f32x4(v: v128) -> f32 {
    let pairs = f32x4_add(v, i32x4_shuffle::<2, 3, 0, 1>(v, v));
    let total = f32x4_add(pairs, i32x4_shuffle::<1, 0, 3, 2>(pairs, pairs));
    f32x4_extract_lane::<0>(total)
}

#[inline(always)]
pub(super) fn sum_i32x4(v: v128) -> i32 {
    let pairs = i32x4_add(v, i32x4_shuffle::<2, 3, 0, 1>(v, v));
    let total = i32x4_add(pairs, i32x4_shuffle::<1, 0, 3, 2>(pairs, pairs));
    i32x4_extract_lane::<0>(total)
}

/// Half of reducing two i32x4 vectors a, b: lanes [a0+a2, b0+b2, a1+a3, b1+b3].
#[inline(always)]
pub(super) fn pair_sums(a: v128, b: v128) -> v128 {
    i32x4_add(i32x4_shuffle::<0, 4, 1, 5>(a, b), i32x4_shuffle::<2, 6, 3, 7>(a, b))
}

/// [Σ a, Σ b, Σ c, Σ d] from `pair_sums(a, b)` and `pair_sums(c, d)`.
#[inline(always)]
pub(super) fn sums_of_pairs(ab: v128, cd: v128) -> v128 {
    i32x4_add(i32x4_shuffle::<0, 1, 4, 5>(ab, cd), i32x4_shuffle::<2, 3, 6, 7>(ab, cd))
}

/// Halves 0..4 and 4..8 of `h` widened as `f16::f16_to_f32` widens a finite half:
/// sign-extend, shift into place, mask, × 2^112. An inf or NaN comes out as the finite
/// 2^16 · 1.mantissa instead; `widen_f16x8` corrects those.
#[inline(always)]
fn widen_finite_f16x8(h: v128) -> [v128; 2] {
    let place = |wide| f32x4_mul(v128_and(i32x4_shl(wide, 13), u32x4_splat(PLACED_MASK)), f32x4_splat(REBIAS));
    [place(i32x4_extend_low_i16x8(h)), place(i32x4_extend_high_i16x8(h))]
}

/// Exact for every half: an inf / NaN lane's 2^16 · 1.mantissa (exponent field 143)
/// gets 112 more in its exponent field, which makes it that inf / NaN, payload and sign kept.
#[inline(always)]
fn widen_f16x8(h: v128) -> [v128; 2] {
    let [low, high] = widen_finite_f16x8(h);
    let special = i16x8_gt(v128_and(h, u16x8_splat(0x7fff)), i16x8_splat(MAX_FINITE as i16));
    let fix = |v, mask| i32x4_add(v, v128_and(mask, u32x4_splat(112 << 23)));
    [fix(low, i32x4_extend_low_i16x8(special)), fix(high, i32x4_extend_high_i16x8(special))]
}

/// True when some half of `h` is inf or NaN (then the exact widening is needed).
fn has_inf_or_nan(h: &[u16]) -> bool {
    let body = h.len() - h.len() % 8;
    let (mut largest, magnitude) = (u16x8_splat(0), u16x8_splat(0x7fff));
    let mut i = 0;
    while i < body {
        // SAFETY: i + 8 ≤ h.len().
        largest = u16x8_max(largest, v128_and(unsafe { load(h.as_ptr().add(i) as *const u8) }, magnitude));
        i += 8;
    }
    v128_any_true(u16x8_gt(largest, u16x8_splat(MAX_FINITE))) || h[body..].iter().any(|&x| x & 0x7fff > MAX_FINITE)
}

/// `f16_to_f32(f32_to_f16(x))` per lane, bit for bit.
#[inline(always)]
fn round_to_f16x4(x: v128) -> v128 {
    let magnitude = v128_and(x, u32x4_splat(0x7fff_ffff));
    let sign = v128_xor(x, magnitude);
    // Normal halves: round the 13 dropped mantissa bits to even; the carry may reach the
    // exponent, and from 65536 up the half is inf.
    let odd = v128_and(u32x4_shr(magnitude, 13), u32x4_splat(1));
    let normal = v128_and(i32x4_add(magnitude, i32x4_add(odd, u32x4_splat(0xfff))), u32x4_splat(0xffff_e000));
    let normal = v128_bitselect(u32x4_splat(0x7f80_0000), normal, i32x4_ge(normal, i32x4_splat(0x4780_0000)));
    // Subnormal halves are multiples of 2^-24, the ulp of 0.5: adding 0.5 rounds to one.
    let subnormal = f32x4_sub(f32x4_add(magnitude, f32x4_splat(0.5)), f32x4_splat(0.5));
    let is_subnormal = i32x4_lt(magnitude, i32x4_splat(0x3880_0000));
    let rounded = v128_or(v128_bitselect(subnormal, normal, is_subnormal), sign);
    // A NaN stays NaN: quieted, its top 10 payload bits kept.
    let nan = v128_or(v128_and(x, u32x4_splat(0xffff_e000)), u32x4_splat(0x0040_0000));
    v128_bitselect(nan, rounded, i32x4_gt(magnitude, i32x4_splat(0x7f80_0000)))
}

#[inline(always)]
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
    // Rows are nearly always finite and take the shorter widening; both give the same bits.
    if has_inf_or_nan(w) {
        dot_widening(w, x, widen_f16x8, f16_to_f32)
    } else {
        dot_widening(w, x, widen_finite_f16x8, f16_to_f32)
    }
}

/// A row of 16-bit floats · x: two f32x4 sums of 8 values widened at a time, then the tail past the
/// last 8 in order (`to_f32` widens those as `widen` does).
#[inline(always)]
fn dot_widening(w: &[u16], x: &[f32], widen: fn(v128) -> [v128; 2], to_f32: fn(u16) -> f32) -> f32 {
    let n = w.len().min(x.len());
    let body = n - n % 8;
    let (mut acc0, mut acc1) = (f32x4_splat(0.0), f32x4_splat(0.0));
    let (wp, xp) = (w.as_ptr() as *const u8, x.as_ptr() as *const u8);
    let mut i = 0;
    while i < body {
        // SAFETY: i + 8 ≤ n elements on both sides.
        unsafe {
            let [w0, w1] = widen(load(wp.add(i * 2)));
            acc0 = f32x4_add(acc0, f32x4_mul(w0, load(xp.add(i * 4))));
            acc1 = f32x4_add(acc1, f32x4_mul(w1, load(xp.add(i * 4 + 16))));
        }
        i += 8;
    }
    let tail = w[body..n].iter().zip(&x[body..n]).fold(0.0, |s, (&a, b)| s + to_f32(a) * b);
    sum_f32x4(f32x4_add(acc0, acc1)) + tail
}

/// bfloat16 → f32 for halves 0..4 and 4..8 of `h`: each into the top of an f32 lane (exact).
#[inline(always)]
fn widen_bf16x8(h: v128) -> [v128; 2] {
    [i32x4_shl(u32x4_extend_low_u16x8(h), 16), i32x4_shl(u32x4_extend_high_u16x8(h), 16)]
}

/// Two f32x4 sums (elements 8k..8k+4 and 8k+4..8k+8), reduced as `scalar::dot_bf16` says.
pub fn dot_bf16(w: &[u16], x: &[f32]) -> f32 {
    dot_widening(w, x, widen_bf16x8, bf16_to_f32)
}

// ---- Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 · Q8_0 / Q8_1: blocks of 32 ----

/// One Q8_0 block's 32 weights as four i16x8 vectors, in element order.
#[inline(always)]
unsafe fn unpack_q8_0(w: *const u8) -> [v128; 4] {
    // v128.load8x8_s: load and sign-extend in one instruction.
    [0, 8, 16, 24].map(|at| i16x8_load_extend_i8x8(w.add(at) as *const i8))
}

/// Sixteen bytes of nibbles (byte j: element j low, j + 16 high) as i16x8 vectors in element
/// order, `high_bits` (0 or 16 per element, as two i8x16) or-ed in and `offset` subtracted.
#[inline(always)]
fn unpack_nibbles(packed: v128, high_bits: [v128; 2], offset: i8) -> [v128; 4] {
    let offset = i8x16_splat(offset);
    let low = i8x16_sub(v128_or(v128_and(packed, u8x16_splat(15)), high_bits[0]), offset);
    let high = i8x16_sub(v128_or(u8x16_shr(packed, 4), high_bits[1]), offset);
    [
        i16x8_extend_low_i8x16(low),
        i16x8_extend_high_i8x16(low),
        i16x8_extend_low_i8x16(high),
        i16x8_extend_high_i8x16(high),
    ]
}

/// A Q5 block's qh (bit j: element j's fifth bit) as 16 per element, elements 0..16 and 16..32.
#[inline(always)]
fn q5_high_bits(qh: [u8; 4]) -> [v128; 2] {
    let qh = u32x4_splat(u32::from_le_bytes(qh));
    let bits = u8x16(1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128);
    let spread = |bytes: v128| v128_and(i8x16_eq(v128_and(bytes, bits), bits), u8x16_splat(16));
    [
        spread(i8x16_shuffle::<0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1>(qh, qh)),
        spread(i8x16_shuffle::<2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3>(qh, qh)),
    ]
}

/// How each 32-block type widens its weights into four i16x8 vectors in element order.
trait Widen32: Block32 {
    unsafe fn widened(&self) -> [v128; 4];
}

impl Widen32 for BlockQ8_0 {
    unsafe fn widened(&self) -> [v128; 4] {
        unpack_q8_0(self.qs.as_ptr())
    }
}

impl Widen32 for BlockQ4_0 {
    unsafe fn widened(&self) -> [v128; 4] {
        unpack_nibbles(load(self.qs.as_ptr()), [i8x16_splat(0); 2], 8)
    }
}

impl Widen32 for BlockQ4_1 {
    unsafe fn widened(&self) -> [v128; 4] {
        unpack_nibbles(load(self.qs.as_ptr()), [i8x16_splat(0); 2], 0)
    }
}

impl Widen32 for BlockQ5_0 {
    unsafe fn widened(&self) -> [v128; 4] {
        unpack_nibbles(load(self.qs.as_ptr()), q5_high_bits(self.qh), 16)
    }
}

impl Widen32 for BlockQ5_1 {
    unsafe fn widened(&self) -> [v128; 4] {
        unpack_nibbles(load(self.qs.as_ptr()), q5_high_bits(self.qh), 0)
    }
}

/// A packed group's nibbles (see `packed`): byte k holds lo = element k and hi = element 8 + k,
/// byte 8 + k elements 16 + k and 24 + k. Each half widened to u16 lanes gives the bytes
/// b = lo + 16·hi and, by a shift, hi: dotted with the activation's `q4_mix` that is
/// Σ lo·x + hi·x' with the nibbles as 0..=15 (Q4_0 subtracts 8·Σx afterwards).
#[inline(always)]
unsafe fn unpack_nibbles_packed(w: *const u8) -> [v128; 4] {
    let (first, second) = (u16x8_load_extend_u8x8(w), u16x8_load_extend_u8x8(w.add(8)));
    [first, u16x8_shr(first, 4), second, u16x8_shr(second, 4)]
}

/// A packed group's Q5 block: `unpack_nibbles_packed` with the fifth bits of row LANE from the
/// block's `plane` (see `packed`): per half v, a shift and mask give each u16 lane 16·bit(lo) +
/// 256·bit(hi), so b + that is (lo + 16·bit) + 16·(hi + 16·bit), and the second vector
/// hi + 16·bit(hi): the Q4 form of 5-bit values (Q5_0 subtracts 16·Σx afterwards).
#[inline(always)]
unsafe fn unpack_q5_packed<const LANE: usize>(w: *const u8, plane: v128) -> [v128; 4] {
    let half = |b: v128, v: usize| {
        let at = plane_bit(2 * LANE + v);
        let placed = if at <= 4 { u16x8_shl(plane, (4 - at) as u32) } else { u16x8_shr(plane, (at - 4) as u32) };
        let bits = v128_and(placed, u16x8_splat(0x0110));
        [i16x8_add(b, bits), i16x8_add(u16x8_shr(b, 4), v128_and(u16x8_shr(bits, 4), u16x8_splat(0x10)))]
    };
    let ([a, b], [c, d]) = (half(u16x8_load_extend_u8x8(w), 0), half(u16x8_load_extend_u8x8(w.add(8)), 1));
    [a, b, c, d]
}

/// i32x4 lanes summing to one block's Σ w·x: the unpacked i16 weights times the
/// block's 32 i16 activation values at `x`, pair-summed by i32x4.dot_i16x8.
#[inline(always)]
unsafe fn block_sum(w: &[v128; 4], x: *const u8) -> v128 {
    let first = i32x4_add(i32x4_dot_i16x8(w[0], load(x)), i32x4_dot_i16x8(w[1], load(x.add(16))));
    let second = i32x4_add(i32x4_dot_i16x8(w[2], load(x.add(32))), i32x4_dot_i16x8(w[3], load(x.add(48))));
    i32x4_add(first, second)
}

/// Four finite f16 block scales at `p` as f32, exactly as `f16::f16_to_f32`: sign-extended
/// into i32 lanes by the load, shifted into place, masked, × 2^112. (`packed::pack_in_place`
/// leaves a matrix with an inf or NaN scale raw, for the row kernel.)
#[inline(always)]
unsafe fn load_scales(p: *const u8) -> v128 {
    let wide = i32x4_load_extend_i16x4(p as *const i16);
    f32x4_mul(v128_and(i32x4_shl(wide, 13), u32x4_splat(PLACED_MASK)), f32x4_splat(REBIAS))
}

/// One raw row · N activations, block by block: each block's weights are unpacked once for
/// every token, whose exact i32 sum becomes the block's term (`scalar::Block32::term`), added
/// in block order as in `scalar.rs`.
#[inline(always)]
fn dot_row<B: Widen32, const N: usize>(w: &[u8], xs: [Q8Activation; N]) -> [f32; N] {
    let row = blocks::<B>(w);
    let count = xs.iter().fold(row.len(), |m, x| m.min(x.scales.len()).min(x.q8_1_s.len()).min(x.qs.len() / QK));
    let x_qs = xs.map(|x| x.qs.as_ptr() as *const u8);
    let mut sums = [0.0f32; N];
    for (b, block) in row[..count].iter().enumerate() {
        // SAFETY: block b < count is within every activation.
        let unpacked = unsafe { block.widened() };
        for t in 0..N {
            let sumi = sum_i32x4(unsafe { block_sum(&unpacked, x_qs[t].add(b * QK * 2)) });
            sums[t] += block.term(sumi, &xs[t], b);
        }
    }
    sums
}

/// What the group kernel needs of a packed 32-block type (offsets: `packed::GroupLayout`).
pub(super) trait Group {
    /// Bytes of one block of one row.
    const BLOCK_BYTES: usize;
    /// Whether the weights are dotted with the activation's `q4_mix` (the nibble forms) or its `qs`.
    const Q4_MIX: bool;
    /// Row LANE's 32 weights of the group's block at `block`, as four i16x8 vectors.
    unsafe fn weights<const LANE: usize>(block: *const u8) -> [v128; 4];
    /// The four rows' f32 terms (the scalar `Block32::term`, lane by lane) from their exact sums
    /// and the token's block: its scale `x_d`, Σq `x_sum` and Q8_1's s `x_s`.
    unsafe fn terms(block: *const u8, sums: v128, x_d: f32, x_sum: i32, x_s: f32) -> v128;
}

/// Where the quants of row `lane` start in a block of `block_bytes` per row, after 4 d, `m`
/// four m and `qh` a plane.
pub(super) const fn quants_at(block_bytes: usize, lane: usize, m: bool, qh: bool) -> usize {
    let head = 2 + 2 * m as usize + 4 * qh as usize;
    ROWS * head + lane * (block_bytes - head)
}

impl Group for BlockQ8_0 {
    const BLOCK_BYTES: usize = Q8_0_BLOCK_BYTES;
    const Q4_MIX: bool = false;
    unsafe fn weights<const LANE: usize>(block: *const u8) -> [v128; 4] {
        unpack_q8_0(block.add(quants_at(Self::BLOCK_BYTES, LANE, false, false)))
    }
    unsafe fn terms(block: *const u8, sums: v128, x_d: f32, _: i32, _: f32) -> v128 {
        f32x4_mul(f32x4_convert_i32x4(sums), f32x4_mul(load_scales(block), f32x4_splat(x_d)))
    }
}

impl Group for BlockQ4_0 {
    const BLOCK_BYTES: usize = Q4_0_BLOCK_BYTES;
    const Q4_MIX: bool = true;
    unsafe fn weights<const LANE: usize>(block: *const u8) -> [v128; 4] {
        unpack_nibbles_packed(block.add(quants_at(Self::BLOCK_BYTES, LANE, false, false)))
    }
    unsafe fn terms(block: *const u8, sums: v128, x_d: f32, x_sum: i32, _: f32) -> v128 {
        let sums = f32x4_convert_i32x4(i32x4_sub(sums, i32x4_splat(8 * x_sum)));
        f32x4_mul(f32x4_mul(sums, load_scales(block)), f32x4_splat(x_d))
    }
}

impl Group for BlockQ4_1 {
    const BLOCK_BYTES: usize = 20;
    const Q4_MIX: bool = true;
    unsafe fn weights<const LANE: usize>(block: *const u8) -> [v128; 4] {
        unpack_nibbles_packed(block.add(quants_at(Self::BLOCK_BYTES, LANE, true, false)))
    }
    unsafe fn terms(block: *const u8, sums: v128, x_d: f32, _: i32, x_s: f32) -> v128 {
        q8_1_terms(block, sums, x_d, x_s)
    }
}

impl Group for BlockQ5_0 {
    const BLOCK_BYTES: usize = 22;
    const Q4_MIX: bool = true;
    unsafe fn weights<const LANE: usize>(block: *const u8) -> [v128; 4] {
        unpack_q5_packed::<LANE>(block.add(quants_at(Self::BLOCK_BYTES, LANE, false, true)), load(block.add(2 * ROWS)))
    }
    unsafe fn terms(block: *const u8, sums: v128, x_d: f32, x_sum: i32, _: f32) -> v128 {
        let sums = f32x4_convert_i32x4(i32x4_sub(sums, i32x4_splat(16 * x_sum)));
        f32x4_mul(f32x4_mul(load_scales(block), f32x4_splat(x_d)), sums)
    }
}

impl Group for BlockQ5_1 {
    const BLOCK_BYTES: usize = 24;
    const Q4_MIX: bool = true;
    unsafe fn weights<const LANE: usize>(block: *const u8) -> [v128; 4] {
        unpack_q5_packed::<LANE>(block.add(quants_at(Self::BLOCK_BYTES, LANE, true, true)), load(block.add(4 * ROWS)))
    }
    unsafe fn terms(block: *const u8, sums: v128, x_d: f32, _: i32, x_s: f32) -> v128 {
        q8_1_terms(block, sums, x_d, x_s)
    }
}

/// Q4_1's and Q5_1's terms: (d·x_d)·sumi + m·x_s, d and m the block's four of each.
#[inline(always)]
unsafe fn q8_1_terms(block: *const u8, sums: v128, x_d: f32, x_s: f32) -> v128 {
    let scaled = f32x4_mul(f32x4_mul(load_scales(block), f32x4_splat(x_d)), f32x4_convert_i32x4(sums));
    f32x4_add(scaled, f32x4_mul(load_scales(block.add(2 * ROWS)), f32x4_splat(x_s)))
}

/// One packed group (`packed::ROWS` = 4 rows) · N activations, `[token][row]`. Per block, each
/// row's weights are unpacked once for every token; a token's four rows' i32 sums reduce into
/// one vector whose f32 terms are added to that token's accumulator: per lane the steps of the
/// scalar kernel, so the same bits.
#[inline(always)]
fn dot_group<G: Group, const N: usize>(group: &[u8], layout: GroupLayout, xs: [Q8Activation; N]) -> [[f32; ROWS]; N] {
    assert!(group.len() >= layout.bytes() && layout.ty.block_bytes() == G::BLOCK_BYTES);
    let blocks = xs.iter().fold(layout.blocks, |m, x| {
        m.min(x.scales.len()).min(x.q8_1_s.len()).min(x.qs.len() / QK).min(x.sums.len()).min(x.q4_mix.len() / QK)
    });
    // Pointers that step one block at a time: offsets inside a block are then constants that
    // fold into the loads, where indexing would cost an address computation per load.
    let mut block = group.as_ptr();
    let mut x_values = xs.map(|x| if G::Q4_MIX { x.q4_mix.as_ptr() } else { x.qs.as_ptr() } as *const u8);
    let (mut x_scales, mut x_sums, mut x_s) = (xs.map(|x| x.scales.as_ptr()), xs.map(|x| x.sums.as_ptr()), xs.map(|x| x.q8_1_s.as_ptr()));
    let mut acc = [f32x4_splat(0.0); N];
    for _ in 0..blocks {
        // SAFETY (for the closure's callers): this block (< blocks) of every row is within the
        // group, and of every activation.
        let sum = |unpacked: &[v128; 4], t: usize| unsafe { block_sum(unpacked, x_values[t]) };
        // Row by row, so that few vectors are live at once: rows 0 and 1 are half-reduced
        // into `low`, then rows 2 and 3 finish the four sums.
        let (mut first, mut low) = ([i32x4_splat(0); N], [i32x4_splat(0); N]);
        let unpacked = unsafe { G::weights::<0>(block) };
        for t in 0..N {
            first[t] = sum(&unpacked, t);
        }
        let unpacked = unsafe { G::weights::<1>(block) };
        for t in 0..N {
            low[t] = pair_sums(first[t], sum(&unpacked, t));
        }
        let unpacked = unsafe { G::weights::<2>(block) };
        for t in 0..N {
            first[t] = sum(&unpacked, t);
        }
        let unpacked = unsafe { G::weights::<3>(block) };
        for t in 0..N {
            let sums = sums_of_pairs(low[t], pair_sums(first[t], sum(&unpacked, t)));
            // SAFETY: as above, for the block's d (and m), the activations' scale, sum and s.
            acc[t] = f32x4_add(acc[t], unsafe { G::terms(block, sums, *x_scales[t], *x_sums[t], *x_s[t]) });
        }
        block = block.wrapping_add(ROWS * G::BLOCK_BYTES);
        for t in 0..N {
            x_values[t] = x_values[t].wrapping_add(QK * 2);
            x_scales[t] = x_scales[t].wrapping_add(1);
            x_sums[t] = x_sums[t].wrapping_add(1);
            x_s[t] = x_s[t].wrapping_add(1);
        }
    }
    acc.map(|v| {
        [f32x4_extract_lane::<0>(v), f32x4_extract_lane::<1>(v), f32x4_extract_lane::<2>(v), f32x4_extract_lane::<3>(v)]
    })
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

/// `quant::quantize_row_q8_0` into i16 values, plus Q8_1's sums and the Q4_0 helpers
/// (`quant::q4_extras`); four lanes at a time with the same steps: amax ignoring NaN (pmax),
/// q = roundf(x · (1/d)) (halves away from zero), saturated to i8 as `as i8` does.
pub fn quantize_q8_0(x: &[f32], out: Q8ActivationMut) {
    let Q8ActivationMut { scales, q8_1_s, qs, sums, q4_mix } = out;
    let blocks =
        (x.len() / QK).min(scales.len()).min(q8_1_s.len()).min(qs.len() / QK).min(sums.len()).min(q4_mix.len() / QK);
    for b in 0..blocks {
        // SAFETY: block b < blocks is within x and qs.
        let values: [v128; 8] = core::array::from_fn(|i| unsafe { load(x.as_ptr().add(b * QK + 4 * i) as *const u8) });
        let amax = f32x4_reduce_max(values.iter().fold(f32x4_splat(0.0), |m, &v| f32x4_pmax(m, f32x4_abs(v))));
        let d = amax / 127.0;
        let inverse = f32x4_splat(if d != 0.0 { 1.0 / d } else { 0.0 });
        scales[b] = f16_to_f32(f32_to_f16(d));
        let q = values.map(|v| i32x4_trunc_sat_f32x4(round_half_away(f32x4_mul(v, inverse))));
        let clamped: [v128; 4] = core::array::from_fn(|i| clamp_i8(i16x8_narrow_i32x4(q[2 * i], q[2 * i + 1])));
        let sum = sum_i32x4(clamped.iter().fold(i32x4_splat(0), |s, &v| i32x4_add(s, i32x4_extadd_pairwise_i16x8(v))));
        sums[b] = sum;
        q8_1_s[b] = f16_to_f32(f32_to_f16(sum as f32 * d));
        let [q0, q1, q2, q3] = clamped;
        let mix = [q0, i16x8_sub(q1, i16x8_shl(q0, 4)), q2, i16x8_sub(q3, i16x8_shl(q2, 4))];
        for i in 0..4 {
            // SAFETY: block b < blocks is within qs and q4_mix.
            unsafe {
                core::ptr::write_unaligned(qs.as_mut_ptr().add(b * QK + 8 * i) as *mut v128, clamped[i]);
                core::ptr::write_unaligned(q4_mix.as_mut_ptr().add(b * QK + 8 * i) as *mut v128, mix[i]);
            }
        }
    }
}

/// The largest lane of an f32x4 (pmax: a NaN lane never wins).
#[inline(always)]
fn f32x4_reduce_max(v: v128) -> f32 {
    let v = f32x4_pmax(v, i32x4_shuffle::<2, 3, 0, 1>(v, v));
    f32x4_extract_lane::<0>(f32x4_pmax(v, i32x4_shuffle::<1, 0, 3, 2>(v, v)))
}

/// i16 lanes clamped to i8's range.
#[inline(always)]
fn clamp_i8(v: v128) -> v128 {
    i16x8_max(i16x8_min(v, i16x8_splat(127)), i16x8_splat(-128))
}

/// `quant::quantize_row_q8_k`, eight values at a time with the same steps: amax ignoring NaN,
/// max the first value of that magnitude, q = nearest_int(iscale · x) (ggml's 1.5·2^23
/// trick, lane by lane) clamped to [-128, 127] and stored in pair order, the sums of each 16.
pub fn quantize_q8_k(x: &[f32], out: Q8KActivationMut) {
    let Q8KActivationMut { d, qs, bsums } = out;
    let blocks = (x.len() / QK_K).min(d.len()).min(qs.len() / QK_K).min(bsums.len() / 16);
    for b in 0..blocks {
        let values = &x[b * QK_K..][..QK_K];
        // SAFETY: each i + 4 ≤ 256 values.
        let lanes = (0..QK_K).step_by(4).map(|i| unsafe { load(values.as_ptr().add(i) as *const u8) });
        let amax = f32x4_reduce_max(lanes.fold(f32x4_splat(0.0), |m, v| f32x4_pmax(m, f32x4_abs(v))));
        let (q, sums) = (&mut qs[b * QK_K..][..QK_K], &mut bsums[b * 16..][..16]);
        if amax == 0.0 {
            d[b] = 0.0;
            q.iter_mut().for_each(|q| *q = 0);
            sums.iter_mut().for_each(|s| *s = 0);
            continue;
        }
        let max = values.iter().copied().find(|v| v.abs() == amax).unwrap_or(amax);
        let iscale = -127.0 / max;
        let (scale, magic) = (f32x4_splat(iscale), f32x4_splat(12_582_912.0));
        let nearest = |v: v128| {
            let shifted = f32x4_add(f32x4_mul(scale, v), magic);
            i32x4_sub(v128_and(shifted, i32x4_splat(0x007f_ffff)), i32x4_splat(0x0040_0000))
        };
        for (group, sum) in sums.iter_mut().enumerate() {
            // SAFETY: group < 16: values and q hold 16 from 16·group.
            let [first, second]: [v128; 2] = core::array::from_fn(|h| unsafe {
                let at = values.as_ptr().add(16 * group + 8 * h) as *const u8;
                clamp_i8(i16x8_narrow_i32x4(nearest(load(at)), nearest(load(at.add(16)))))
            });
            // Stored in pairs (k, k + 8): `quant::q8_k_position`.
            let paired = [
                i16x8_shuffle::<0, 8, 1, 9, 2, 10, 3, 11>(first, second),
                i16x8_shuffle::<4, 12, 5, 13, 6, 14, 7, 15>(first, second),
            ];
            for (h, &half) in paired.iter().enumerate() {
                unsafe { core::ptr::write_unaligned(q.as_mut_ptr().add(16 * group + 8 * h) as *mut v128, half) };
            }
            *sum = sum_i32x4(i32x4_extadd_pairwise_i16x8(i16x8_add(first, second))) as i16;
        }
        d[b] = 1.0 / iscale;
    }
}

/// `f32::round` per lane: the integer part, plus one away from zero when the dropped
/// fraction (exact) is at least a half.
#[inline(always)]
fn round_half_away(v: v128) -> v128 {
    let whole = f32x4_trunc(v);
    let away = f32x4_ge(f32x4_abs(f32x4_sub(v, whole)), f32x4_splat(0.5));
    let one = v128_or(v128_and(v, u32x4_splat(0x8000_0000)), f32x4_splat(1.0));
    f32x4_add(whole, v128_and(away, one))
}

pub fn dot_f32_rows(rows: &[f32], stride: usize, x: &[f32], out: &mut [f32]) {
    for (j, o) in out.iter_mut().enumerate() {
        *o = dot_f32(&rows[j * stride..][..x.len()], x);
    }
}

/// Sixteen lanes of y at a time stay in registers while every row adds its part, rows in
/// order: each lane takes the same steps as with one call per row.
pub fn axpy_rows(y: &mut [f32], a: &[f32], rows: &[f32], stride: usize) {
    let n = y.len();
    let wide = n - n % 16;
    let yp = y.as_mut_ptr() as *mut u8;
    let mut i = 0;
    while i < wide {
        // SAFETY: i + 16 ≤ n, and each row slice holds n values.
        unsafe {
            let mut acc: [v128; 4] = core::array::from_fn(|k| load(yp.add((i + 4 * k) * 4)));
            for (j, &aj) in a.iter().enumerate() {
                let row = rows[j * stride..][..n].as_ptr().add(i) as *const u8;
                for (k, acc) in acc.iter_mut().enumerate() {
                    *acc = f32x4_add(*acc, f32x4_mul(f32x4_splat(aj), load(row.add(16 * k))));
                }
            }
            for (k, &acc) in acc.iter().enumerate() {
                core::ptr::write_unaligned(yp.add((i + 4 * k) * 4) as *mut v128, acc);
            }
        }
        i += 16;
    }
    if wide < n {
        super::scalar::axpy_rows(&mut y[wide..], a, &rows[wide..], stride);
    }
}

pub fn widen_f16_rows(src: &[u16], stride: usize, dst: &mut [f32], width: usize) {
    for (j, row) in dst.chunks_exact_mut(width).enumerate() {
        let src = &src[j * stride..][..width];
        if has_inf_or_nan(src) {
            widen_row(src, row, widen_f16x8)
        } else {
            widen_row(src, row, widen_finite_f16x8)
        }
    }
}

#[inline(always)]
fn widen_row(src: &[u16], dst: &mut [f32], widen: fn(v128) -> [v128; 2]) {
    let n = src.len().min(dst.len());
    let body = n - n % 8;
    let (sp, dp) = (src.as_ptr() as *const u8, dst.as_mut_ptr() as *mut u8);
    let mut i = 0;
    while i < body {
        // SAFETY: i + 8 ≤ n elements on both sides.
        unsafe {
            let [low, high] = widen(load(sp.add(i * 2)));
            core::ptr::write_unaligned(dp.add(i * 4) as *mut v128, low);
            core::ptr::write_unaligned(dp.add(i * 4 + 16) as *mut v128, high);
        }
        i += 8;
    }
    for (d, &h) in dst[body..n].iter_mut().zip(&src[body..n]) {
        *d = f16_to_f32(h);
    }
}

/// Bit for bit `f32::exp`, which the wasm build takes from Rust's libm (FreeBSD's e_expf):
/// the same f32 steps on four lanes. Lanes where libm leaves its main path (|x| ≥ 87.33,
/// where the result overflows or is subnormal, inf, NaN) go through `f32::exp` itself.
pub fn exp_shifted(values: &mut [f32], shift: f32) {
    let mut chunks = values.chunks_exact_mut(4);
    for chunk in &mut chunks {
        // SAFETY: the chunk holds 4 values.
        let x = f32x4_sub(unsafe { load(chunk.as_ptr() as *const u8) }, f32x4_splat(shift));
        let magnitude = v128_and(x, u32x4_splat(0x7fff_ffff));
        if i32x4_all_true(i32x4_lt(magnitude, i32x4_splat(0x42ae_ac50))) {
            unsafe { core::ptr::write_unaligned(chunk.as_mut_ptr() as *mut v128, expf_main_path(x)) };
        } else {
            super::scalar::exp_shifted(chunk, shift);
        }
    }
    super::scalar::exp_shifted(chunks.into_remainder(), shift);
}

/// `scalar::silu_mul` four lanes at a time, exp as `exp_shifted` takes it (libm's bits), the
/// division, sum and product as the scalar steps: the same bits.
pub fn silu_mul(gate: &mut [f32], up: &[f32]) {
    let n = gate.len().min(up.len());
    let body = n - n % 4;
    let (gp, up_ptr) = (gate.as_mut_ptr() as *mut u8, up.as_ptr() as *const u8);
    let mut i = 0;
    while i < body {
        // SAFETY: i + 4 ≤ n on both sides.
        unsafe {
            let g = load(gp.add(4 * i));
            let minus = f32x4_neg(g);
            if i32x4_all_true(i32x4_lt(v128_and(minus, u32x4_splat(0x7fff_ffff)), i32x4_splat(0x42ae_ac50))) {
                let silu = f32x4_div(g, f32x4_add(f32x4_splat(1.0), expf_main_path(minus)));
                core::ptr::write_unaligned(gp.add(4 * i) as *mut v128, f32x4_mul(silu, load(up_ptr.add(4 * i))));
            } else {
                super::scalar::silu_mul(&mut gate[i..i + 4], &up[i..i + 4]);
            }
        }
        i += 4;
    }
    super::scalar::silu_mul(&mut gate[body..n], &up[body..n]);
}

/// libm's expf for |x| < 87.33: x = k·ln2 + r (ln2 split in a high part whose product
/// with k is exact and a low part), a rational approximation of exp(r), times 2^k.
#[inline(always)]
fn expf_main_path(x: v128) -> v128 {
    let constant = |bits: u32| f32x4_splat(f32::from_bits(bits));
    let (ln2_hi, ln2_lo, inv_ln2) = (constant(0x3f31_7200), constant(0x35bf_be8e), constant(0x3fb8_aa3b));
    let (p1, p2, one, two) = (constant(0x3e2a_aa8f), constant(0xbb35_5215), f32x4_splat(1.0), f32x4_splat(2.0));
    let magnitude = v128_and(x, u32x4_splat(0x7fff_ffff));
    // k: x/ln2 rounded half away from zero beyond 1.5·ln2, ±1 beyond 0.5·ln2, else 0.
    let half_away = v128_or(f32x4_splat(0.5), v128_and(x, u32x4_splat(0x8000_0000)));
    let k_far = i32x4_trunc_sat_f32x4(f32x4_add(f32x4_mul(inv_ln2, x), half_away));
    let k_near = v128_and(v128_or(i32x4_shr(x, 31), i32x4_splat(1)), i32x4_gt(magnitude, i32x4_splat(0x3eb1_7218)));
    let k = v128_bitselect(k_far, k_near, i32x4_gt(magnitude, i32x4_splat(0x3f85_1592)));
    // With k = 0 these are libm's hi = x, lo = 0 exactly.
    let kf = f32x4_convert_i32x4(k);
    let hi = f32x4_sub(x, f32x4_mul(kf, ln2_hi));
    let lo = f32x4_mul(kf, ln2_lo);
    let r = f32x4_sub(hi, lo);
    let rr = f32x4_mul(r, r);
    let c = f32x4_sub(r, f32x4_mul(rr, f32x4_add(p1, f32x4_mul(rr, p2))));
    let y = f32x4_add(one, f32x4_add(f32x4_sub(f32x4_div(f32x4_mul(r, c), f32x4_sub(two, c)), lo), hi));
    // scalbnf(y, k) for -126 ≤ k ≤ 127 is one multiplication by 2^k (by 1 when k = 0).
    let scaled = f32x4_mul(y, i32x4_shl(i32x4_add(k, i32x4_splat(0x7f)), 23));
    // libm returns 1 + x for |x| ≤ 2^-14.
    v128_bitselect(f32x4_add(one, x), scaled, i32x4_le(magnitude, i32x4_splat(0x3900_0000)))
}

pub fn round_to_f16(values: &mut [f32]) {
    let body = values.len() - values.len() % 4;
    let p = values.as_mut_ptr() as *mut u8;
    let mut i = 0;
    while i < body {
        // SAFETY: i + 4 ≤ len.
        unsafe { core::ptr::write_unaligned(p.add(i * 4) as *mut v128, round_to_f16x4(load(p.add(i * 4)))) };
        i += 4;
    }
    super::scalar::round_to_f16(&mut values[body..]);
}
