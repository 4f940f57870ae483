//! Kernel dispatch: `simd128` on wasm32 builds with `+simd128`, `scalar` elsewhere.
//! Both modules export the same functions with the same signatures.

pub mod scalar;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub mod simd128;

#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
pub use scalar::*;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub use simd128::*;

use std::ops::Range;

use crate::error::try_vec;
use crate::error::{Status, ERR_BAD_ARGUMENT};
use crate::packed::{pack_in_place, GroupLayout, PackedMatrix, ROWS};
use crate::quant::PreparedInput;
use crate::quant::{GgmlType, Q8Activation, QK};

/// True when this build carries the SIMD128 kernels.
pub const HAS_SIMD: bool = cfg!(all(target_arch = "wasm32", target_feature = "simd128"));

/// Most activations one multi-token kernel call takes. With four, the group kernel keeps more
/// vectors live than x86-64 has registers (measured: a 4-token pass is faster as 3 + 1 tokens).
pub const MAX_TOKENS: usize = 3;

/// Rows `rows` of a packed matrix (`rows.start` a multiple of `packed::ROWS`) · 1..=MAX_TOKENS
/// activations; `store(r, sums)` gets row r's results, one per activation. Whole groups go
/// through the group kernel, the raw rows after them through the row kernel; both give the
/// same bits. The kernel instances for that many tokens are picked once, not per row.
pub fn dot_rows_quantized(
    q8_0: bool,
    matrix: PackedMatrix,
    rows: Range<usize>,
    xs: &[Q8Activation],
    store: impl FnMut(usize, &[f32]),
) {
    dot_rows_quantized_with(HAS_SIMD, q8_0, matrix, rows, xs, store)
}

/// `dot_rows_quantized` through the SIMD128 kernels (when built) or the scalar ones.
fn dot_rows_quantized_with(
    simd: bool,
    q8_0: bool,
    matrix: PackedMatrix,
    rows: Range<usize>,
    xs: &[Q8Activation],
    mut store: impl FnMut(usize, &[f32]),
) {
    let packed_end = rows.end.min(matrix.packed_rows).max(rows.start);
    macro_rules! each_row {
        ($group_kernel:path, $row_kernel:path, [$($x:ident),+]) => {{
            for g in rows.start / ROWS..packed_end / ROWS {
                let sums = $group_kernel(matrix.group(g), matrix.layout, [$($x),+]);
                for lane in 0..ROWS {
                    store(g * ROWS + lane, &sums.map(|token| token[lane]));
                }
            }
            for r in packed_end..rows.end {
                store(r, &$row_kernel(matrix.raw_row(r), [$($x),+]));
            }
        }};
    }
    macro_rules! by_count {
        ($group_kernel:path, $row_kernel:path) => {
            match *xs {
                [a] => each_row!($group_kernel, $row_kernel, [a]),
                [a, b] => each_row!($group_kernel, $row_kernel, [a, b]),
                [a, b, c] => each_row!($group_kernel, $row_kernel, [a, b, c]),
                _ => {} // callers pass 1..=MAX_TOKENS activations
            }
        };
    }
    match (simd, q8_0) {
        (true, true) => by_count!(dot_q8_0_q8_0_group, dot_q8_0_q8_0_tokens),
        (true, false) => by_count!(dot_q4_0_q8_0_group, dot_q4_0_q8_0_tokens),
        (false, true) => by_count!(scalar::dot_q8_0_q8_0_group, scalar::dot_q8_0_q8_0_tokens),
        (false, false) => by_count!(scalar::dot_q4_0_q8_0_group, scalar::dot_q4_0_q8_0_tokens),
    }
}

/// One weight row (raw GGUF bytes) · one f32 activation vector through the
/// real path: activation conversion, then the scalar or SIMD128 dot. A quantized row
/// goes through every quantized path at once: the activation quantized by the build's
/// kernel and by the scalar one, the row copied into a matrix of one packed group (unless a
/// scale is inf or NaN) and one raw row, dotted with 1..=MAX_TOKENS copies of the activation;
/// the result is NaN unless
/// all those give the same bits. Test hook behind `rg_kernel_dot`; allocates, so not for
/// the hot path.
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
        GgmlType::Q8_0 | GgmlType::Q4_0 => {
            let mut scalar_input = PreparedInput::new(x.len(), 1)?;
            scalar_input.prepare_with(scalar::quantize_q8_0, x, 1, false, true);
            let (built, reference) = (input.q8(0), scalar_input.q8(0));
            let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            let fields = |a: Q8Activation<'_>| (bits(a.scales), a.qs.to_vec(), a.sums.to_vec(), a.q4_mix.to_vec());
            if fields(built) != fields(reference) {
                return Ok(f32::NAN);
            }
            dot_row_every_path(ty, simd, row, reference)?
        }
    })
}

fn dot_row_every_path(ty: GgmlType, simd: bool, row: &[u8], x: Q8Activation) -> Result<f32, Status> {
    const COPIES: usize = ROWS + 1;
    let layout = GroupLayout::new(ty, x.scales.len());
    let mut data: Vec<u8> = try_vec(COPIES * row.len())?;
    for copy in data.chunks_exact_mut(row.len()) {
        copy.copy_from_slice(row);
    }
    let packed = pack_in_place(&mut data, layout, &mut try_vec(layout.bytes())?);
    let matrix = PackedMatrix { data: &data, rows: COPIES, packed_rows: if packed { ROWS } else { 0 }, layout };
    let mut results = Vec::new();
    for count in 1..=MAX_TOKENS {
        let xs = [x; MAX_TOKENS];
        dot_rows_quantized_with(simd, ty == GgmlType::Q8_0, matrix, 0..COPIES, &xs[..count], |_, sums| {
            results.extend_from_slice(sums)
        });
    }
    let first = results[0];
    Ok(if results.iter().all(|r| r.to_bits() == first.to_bits()) { first } else { f32::NAN })
}

/// Copies little-endian words out of a byte row that may be unaligned.
fn read_words<T: Copy + Default>(row: &[u8], read: impl Fn(&[u8]) -> T, size: usize) -> Result<Vec<T>, Status> {
    let mut words = try_vec(row.len() / size)?;
    for (w, bytes) in words.iter_mut().zip(row.chunks_exact(size)) {
        *w = read(bytes);
    }
    Ok(words)
}
