//! Relaxed-SIMD twins of `simd128.rs`'s quantized kernels (same names and inputs), built into the
//! second engine module (`--features relaxed-simd`, see `wasm/build.mjs`). Everything this file
//! does not define is `simd128`'s, re-exported: a definition here shadows the glob.

use core::arch::wasm32::v128;

pub use super::simd128::*;

// rustc 1.63 has no relaxed-SIMD intrinsics. The instruction is declared as an import with its
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
pub use kquants::{dot_q4_k_q8_k_tokens, dot_q5_k_q8_k_tokens, dot_q6_k_q8_k_tokens};

use core::arch::wasm32::*;

use super::simd128::{load, pair_sums, quants_at, sums_of_pairs, Group};
use crate::blocks::BlockQ4_0;
use crate::packed::{GroupLayout, ROWS};
use crate::quant::{Q8Activation, Q4_0_BLOCK_BYTES, QK};

/// A token's 32 activation values of one block as i8, in the order of a packed group's nibbles:
/// [x0..8, x16..24] beside the low nibbles, [x8..16, x24..32] beside the high ones.
#[inline(always)]
unsafe fn nibble_order_i8(x: *const u8) -> [v128; 2] {
    let half = |a: usize, b: usize| i8x16_narrow_i16x8(load(x.add(2 * a)), load(x.add(2 * b)));
    [half(0, 16), half(8, 24)]
}

/// One packed Q4_0 group · N activations: per row, the 32 nibbles (0..=15, valid i7) dotted with
/// the activation's i8 values by two relaxed dots; the exact sums then take `simd128`'s steps
/// (Σ nibble·x − 8·Σx, the f32 terms in block order), so the same bits.
pub fn dot_q4_0_q8_0_group<const N: usize>(g: &[u8], layout: GroupLayout, xs: [Q8Activation; N]) -> [[f32; ROWS]; N] {
    assert!(g.len() >= layout.bytes() && layout.ty.block_bytes() == Q4_0_BLOCK_BYTES);
    let blocks = xs.iter().fold(layout.blocks, |m, x| m.min(x.scales.len()).min(x.qs.len() / QK).min(x.sums.len()));
    let mut acc = [f32x4_splat(0.0); N];
    for b in 0..blocks {
        // SAFETY: block b < blocks of the group's rows and of every activation.
        unsafe {
            let block = g.as_ptr().add(b * ROWS * Q4_0_BLOCK_BYTES);
            let nibbles: [v128; ROWS] = core::array::from_fn(|r| load(block.add(quants_at(Q4_0_BLOCK_BYTES, r, false, false))));
            for t in 0..N {
                let x = nibble_order_i8((xs[t].qs.as_ptr() as *const u8).add(b * QK * 2));
                let row = |v: v128| {
                    let low = dot_i8x16_i7x16_add(x[0], v128_and(v, u8x16_splat(15)), i32x4_splat(0));
                    dot_i8x16_i7x16_add(x[1], u8x16_shr(v, 4), low)
                };
                let sums = sums_of_pairs(pair_sums(row(nibbles[0]), row(nibbles[1])), pair_sums(row(nibbles[2]), row(nibbles[3])));
                acc[t] = f32x4_add(acc[t], <BlockQ4_0 as Group>::terms(block, sums, xs[t].scales[b], xs[t].sums[b], 0.0));
            }
        }
    }
    acc.map(|v| [f32x4_extract_lane::<0>(v), f32x4_extract_lane::<1>(v), f32x4_extract_lane::<2>(v), f32x4_extract_lane::<3>(v)])
}
