//! Kernel dispatch: `simd128` on wasm32 builds with `+simd128`, `scalar` elsewhere.
//! Both modules export the same functions with the same signatures.

pub mod scalar;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub mod simd128;

#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
pub use scalar::*;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub use simd128::*;

use crate::error::try_vec;
use crate::error::{Status, ERR_BAD_ARGUMENT};
use crate::quant::PreparedInput;
use crate::quant::{GgmlType, Q8Activation, QK};

/// True when this build carries the SIMD128 kernels.
pub const HAS_SIMD: bool = cfg!(all(target_arch = "wasm32", target_feature = "simd128"));

/// Most activations one multi-token kernel call takes.
pub const MAX_TOKENS: usize = 4;

/// Every row of `rows` (Q8_0 when `q8_0`, else Q4_0; `row_bytes` each) · 1..=MAX_TOKENS
/// activations; `store(i, sums)` gets row i's results, one per activation. The kernel
/// instance for that many tokens is picked once, not per row.
pub fn dot_rows_quantized(
    q8_0: bool,
    rows: &[u8],
    row_bytes: usize,
    xs: &[Q8Activation],
    mut store: impl FnMut(usize, &[f32]),
) {
    macro_rules! each_row {
        ($kernel:ident, [$($x:ident),+]) => {
            for (i, row) in rows.chunks_exact(row_bytes).enumerate() {
                store(i, &$kernel(row, [$($x),+]));
            }
        };
    }
    macro_rules! by_count {
        ($kernel:ident) => {
            match *xs {
                [a] => each_row!($kernel, [a]),
                [a, b] => each_row!($kernel, [a, b]),
                [a, b, c] => each_row!($kernel, [a, b, c]),
                [a, b, c, d] => each_row!($kernel, [a, b, c, d]),
                _ => {} // callers pass 1..=MAX_TOKENS activations
            }
        };
    }
    if q8_0 {
        by_count!(dot_q8_0_q8_0_tokens)
    } else {
        by_count!(dot_q4_0_q8_0_tokens)
    }
}

/// One weight row (raw GGUF bytes) · one f32 activation vector through the
/// real path: activation conversion, then the scalar or SIMD128 dot.
/// Test hook behind `rg_kernel_dot`; allocates, so not for the hot path.
pub fn dot_row(ty: GgmlType, use_simd: bool, row: &[u8], x: &[f32]) -> Result<f32, Status> {
    if ty.is_quantized() && x.len() % QK != 0 {
        return Err(ERR_BAD_ARGUMENT);
    }
    let mut input = PreparedInput::new(x.len(), 1)?;
    input.prepare(x, 1, ty == GgmlType::F16, ty.is_quantized());
    let simd = use_simd && HAS_SIMD;
    // Same call through the SIMD128 module (when built) or the scalar one.
    macro_rules! dot {
        ($kernel:ident($($arg:expr),*)) => {
            if simd { $kernel($($arg),*) } else { scalar::$kernel($($arg),*) }
        };
    }
    Ok(match ty {
        GgmlType::F32 => {
            let w = read_words(row, |b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]), 4)?;
            dot!(dot_f32(&w, x))
        }
        GgmlType::F16 => {
            let w = read_words(row, |b| u16::from_le_bytes([b[0], b[1]]), 2)?;
            dot!(dot_f16(&w, input.f16_rounded(0)))
        }
        GgmlType::Q8_0 => dot!(dot_q8_0_q8_0(row, input.q8(0))),
        GgmlType::Q4_0 => dot!(dot_q4_0_q8_0(row, input.q8(0))),
    })
}

/// Copies little-endian words out of a byte row that may be unaligned.
fn read_words<T: Copy + Default>(row: &[u8], read: impl Fn(&[u8]) -> T, size: usize) -> Result<Vec<T>, Status> {
    let mut words = try_vec(row.len() / size)?;
    for (w, bytes) in words.iter_mut().zip(row.chunks_exact(size)) {
        *w = read(bytes);
    }
    Ok(words)
}
