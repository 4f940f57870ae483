//! Relaxed-SIMD twins of `simd128.rs`'s quantized kernels (same names and inputs), built into the
//! second engine module (`--features relaxed-simd`, see `wasm/build.mjs`). Everything this file
//! does not define is `simd128`'s, re-exported: a definition here shadows the glob. Here: the
//! packed-group kernels of the nibble types (Q4_0, Q4_1, Q5_0, Q5_1); `relaxed/kquants.rs`: the
//! K-quants' row kernels. Each reads i8 activations in its own order, prepared once per
//! token (`quant::RELAXED_ORDERS`), and weights as they are (unsigned, valid i7) with no widening.

use core::arch::wasm32::v128;

pub use super::simd128::*;

// rustc 1.63 has no relaxed-SIMD intrinsics. Each instruction is declared as an import with its
// exact stack signature, and `wasm/build.mjs` replaces every call to it with the instruction.
#[allow(improper_ctypes)] // v128 is a wasm value type: it crosses the call as one.
#[link(wasm_import_module = "relaxed-simd")]
extern "C" {
    #[link_name = "i32x4.relaxed_dot_i8x16_i7x16_add_s"]
    fn relaxed_dot_add_import(a: v128, b: v128, acc: v128) -> v128;
    #[link_name = "i16x8.relaxed_dot_i8x16_i7x16_s"]
    fn relaxed_dot_import(a: v128, b: v128) -> v128;
}

/// i32x4.relaxed_dot_i8x16_i7x16_add_s: lane i of `acc` plus Σ a[4i + k] · b[4i + k] over k < 4,
/// a as i8 and b as i7. Exact and the same on every host while every byte of b is in 0..=127
/// (otherwise hosts may differ): callers pass only such b.
#[inline(always)]
pub fn dot_i8x16_i7x16_add(a: v128, b: v128, acc: v128) -> v128 {
    // SAFETY: after the build's rewrite, the instruction itself; it has no side effects.
    unsafe { relaxed_dot_add_import(a, b, acc) }
}

/// i16x8.relaxed_dot_i8x16_i7x16_s: lane i is a[2i]·b[2i] + a[2i + 1]·b[2i + 1], a as i8 and b
/// as i7. Exact and the same on every host while every byte of b is in 0..=127 and the sum fits
/// an i16 (hosts may saturate it or wrap it): callers pass only such b, with |a·b| ≤ 128·63.
#[inline(always)]
pub fn dot_i8x16_i7x16(a: v128, b: v128) -> v128 {
    // SAFETY: after the build's rewrite, the instruction itself; it has no side effects.
    unsafe { relaxed_dot_import(a, b) }
}

mod kquants;
pub use kquants::{
    dot_q2_k_q8_k_tokens, dot_q3_k_q8_k_tokens, dot_q4_k_q8_k_tokens, dot_q5_k_q8_k_tokens, dot_q6_k_q8_k_tokens,
};

use core::arch::wasm32::*;

use super::simd128::{load, pair_sums, quants_at, sums_of_pairs, Group};
use crate::blocks::{BlockQ4_0, BlockQ4_1, BlockQ5_0, BlockQ5_1};
use crate::packed::{plane_bit, GroupLayout, ROWS};
use crate::quant::{GgmlType, Q8Activation, QK};

/// What the relaxed group kernel reads of a packed nibble type beyond `simd128`'s `Group`.
trait Nibbles: Group {
    /// Row LANE's 32 values of the block at `block` (0..=15 or 0..=31: valid i7) as u8, beside
    /// the activation's `nibble_order`: [the low nibbles' elements, the high nibbles'].
    unsafe fn values<const LANE: usize>(block: *const u8) -> [v128; 2];
}

/// The 16 bytes of packed nibbles at `w` as [low nibbles, high nibbles].
#[inline(always)]
unsafe fn nibbles(w: *const u8) -> [v128; 2] {
    let v = load(w);
    [v128_and(v, u8x16_splat(15)), u8x16_shr(v, 4)]
}

/// `nibbles` with row LANE's fifth bits from the block's `plane` (see `packed`): per half v, one
/// shift puts the bits of byte 8v + k's two nibbles at bits 0 and 4 of u16 lane k; narrowed to
/// bytes, bit 0 moves up to 16 for the low nibbles and bit 4 stays for the high ones.
#[inline(always)]
unsafe fn q5_values<const LANE: usize>(w: *const u8, plane: v128) -> [v128; 2] {
    let half = |v: usize| v128_and(u16x8_shr(plane, plane_bit(2 * LANE + v) as u32), u16x8_splat(0x11));
    let bits = u8x16_narrow_i16x8(half(0), half(1));
    let [low, high] = nibbles(w);
    [v128_or(low, i8x16_shl(bits, 4)), v128_or(high, v128_and(bits, u8x16_splat(16)))]
}

impl Nibbles for BlockQ4_0 {
    unsafe fn values<const LANE: usize>(block: *const u8) -> [v128; 2] {
        nibbles(block.add(quants_at(Self::BLOCK_BYTES, LANE, false, false)))
    }
}

impl Nibbles for BlockQ4_1 {
    unsafe fn values<const LANE: usize>(block: *const u8) -> [v128; 2] {
        nibbles(block.add(quants_at(Self::BLOCK_BYTES, LANE, true, false)))
    }
}

impl Nibbles for BlockQ5_0 {
    unsafe fn values<const LANE: usize>(block: *const u8) -> [v128; 2] {
        q5_values::<LANE>(block.add(quants_at(Self::BLOCK_BYTES, LANE, false, true)), load(block.add(2 * ROWS)))
    }
}

impl Nibbles for BlockQ5_1 {
    unsafe fn values<const LANE: usize>(block: *const u8) -> [v128; 2] {
        q5_values::<LANE>(block.add(quants_at(Self::BLOCK_BYTES, LANE, true, true)), load(block.add(4 * ROWS)))
    }
}

/// One packed group of a nibble type · N activations: per block, each row's 32 values dotted
/// with the token's i8 values in nibble order by two i32x4 relaxed dots (exact: 32 products of
/// at most 31 · 128; measured faster in workerd than i16x8 relaxed dots and a widening); the four
/// rows' sums then take `simd128`'s steps (`Group::terms`: Q4_0's − 8·Σx, Q5_0's − 16·Σx, Q4_1's
/// and Q5_1's m·s; the f32 terms in block order), so the same bits.
#[inline(always)]
fn dot_group<G: Nibbles, const N: usize>(g: &[u8], layout: GroupLayout, xs: [Q8Activation; N]) -> [[f32; ROWS]; N] {
    assert!(g.len() >= layout.bytes() && layout.ty.block_bytes() == G::BLOCK_BYTES);
    let blocks = xs.iter().fold(layout.blocks, |m, x| {
        m.min(x.scales.len()).min(x.q8_1_s.len()).min(x.sums.len()).min(x.nibble_order.len() / QK)
    });
    let mut acc = [f32x4_splat(0.0); N];
    for b in 0..blocks {
        // SAFETY: block b < blocks of the group's rows and of every activation.
        unsafe {
            let block = g.as_ptr().add(b * ROWS * G::BLOCK_BYTES);
            let rows = [G::values::<0>(block), G::values::<1>(block), G::values::<2>(block), G::values::<3>(block)];
            for t in 0..N {
                let x = xs[t].nibble_order.as_ptr().add(b * QK) as *const u8;
                let x = [load(x), load(x.add(16))];
                let row =
                    |v: [v128; 2]| dot_i8x16_i7x16_add(x[1], v[1], dot_i8x16_i7x16_add(x[0], v[0], i32x4_splat(0)));
                let sums = sums_of_pairs(pair_sums(row(rows[0]), row(rows[1])), pair_sums(row(rows[2]), row(rows[3])));
                acc[t] = f32x4_add(acc[t], G::terms(block, sums, xs[t].scales[b], xs[t].sums[b], xs[t].q8_1_s[b]));
            }
        }
    }
    acc.map(|v| {
        [f32x4_extract_lane::<0>(v), f32x4_extract_lane::<1>(v), f32x4_extract_lane::<2>(v), f32x4_extract_lane::<3>(v)]
    })
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

/// Whether this host runs the relaxed kernels exactly: a pseudo-random row of each type that
/// exercises an instruction (Q4_0's group kernel: the i32x4 dot with its accumulator; Q4_K and
/// Q6_K: the i16x8 dot) through `kernels::dot_row`, which must agree with the scalar kernels bit
/// for bit. Kernels rather than bare instructions: Node 20's experimental relaxed SIMD gets the
/// accumulator wrong only where its register allocation reuses it, as in the kernels' loops and
/// not in a one-off probe. The SDK asks before it picks this module.
pub fn kernels_are_exact() -> bool {
    let mut state = 0x2545_f491u32;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        state
    };
    let x: Vec<f32> = (0..256).map(|_| (next() % 2001) as f32 / 1000.0 - 1.0).collect();
    // (type, offsets of its f16 scales within a block): set to 1/16, the rest random bytes.
    [(GgmlType::Q4_0, &[0usize][..]), (GgmlType::Q4_K, &[0, 2]), (GgmlType::Q6_K, &[208])].iter().all(|&(ty, halves)| {
        let mut row: Vec<u8> = (0..ty.block_bytes() * (256 / ty.block_size())).map(|_| next() as u8).collect();
        for block in row.chunks_exact_mut(ty.block_bytes()) {
            halves.iter().for_each(|&at| block[at..at + 2].copy_from_slice(&0x2c00u16.to_le_bytes()));
        }
        match (super::dot_row(ty, true, &row, &x), super::dot_row(ty, false, &row, &x)) {
            (Ok(relaxed), Ok(scalar)) => relaxed.to_bits() == scalar.to_bits() && !relaxed.is_nan(),
            _ => false,
        }
    })
}
