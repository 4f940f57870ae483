//! Kernel dispatch: `relaxed` in the relaxed-SIMD module (`--features relaxed-simd`), `simd128`
//! on other wasm32 builds with `+simd128`, `scalar` elsewhere. All export the same functions with
//! the same signatures.

#[cfg(all(target_arch = "wasm32", target_feature = "simd128", feature = "relaxed-simd"))]
pub mod relaxed;
pub mod scalar;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub mod simd128;

#[cfg(all(target_arch = "wasm32", target_feature = "simd128", feature = "relaxed-simd"))]
pub use relaxed::*;
#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
pub use scalar::*;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128", not(feature = "relaxed-simd")))]
pub use simd128::*;

use std::ops::Range;

use crate::error::{try_vec, Status, ERR_BAD_ARGUMENT};
use crate::packed::{pack_in_place, GroupLayout, PackedMatrix, ROWS};
use crate::quant::{Activation, GgmlType, Needs, PreparedInput, Q8Activation, Q8KActivation};

/// True when this build carries the SIMD128 kernels.
pub const HAS_SIMD: bool = cfg!(all(target_arch = "wasm32", target_feature = "simd128"));
/// True when this build's quantized kernels use relaxed-SIMD instructions (the second module).
pub const HAS_RELAXED: bool = HAS_SIMD && cfg!(feature = "relaxed-simd");

/// Most activations one multi-token kernel call takes. With four, the group kernel keeps more
/// vectors live than x86-64 has registers (measured: a 4-token pass is faster as 3 + 1 tokens).
pub const MAX_TOKENS: usize = 3;

/// Calls `$each!($ctx; row_kernel[, group_kernel])` with the scalar or the build's kernels of
/// a 32-block type (Q8_0 / Q8_1 activations); other types call nothing.
macro_rules! q8_kernels {
    ($simd:expr, $ty:expr, $each:ident, $ctx:tt) => {
        match ($simd, $ty) {
            (true, GgmlType::Q8_0) => $each!($ctx; dot_q8_0_q8_0_tokens, dot_q8_0_q8_0_group),
            (true, GgmlType::Q4_0) => $each!($ctx; dot_q4_0_q8_0_tokens, dot_q4_0_q8_0_group),
            (true, GgmlType::Q4_1) => $each!($ctx; dot_q4_1_q8_1_tokens, dot_q4_1_q8_1_group),
            (true, GgmlType::Q5_0) => $each!($ctx; dot_q5_0_q8_0_tokens, dot_q5_0_q8_0_group),
            (true, GgmlType::Q5_1) => $each!($ctx; dot_q5_1_q8_1_tokens, dot_q5_1_q8_1_group),
            (false, GgmlType::Q8_0) => $each!($ctx; scalar::dot_q8_0_q8_0_tokens, scalar::dot_q8_0_q8_0_group),
            (false, GgmlType::Q4_0) => $each!($ctx; scalar::dot_q4_0_q8_0_tokens, scalar::dot_q4_0_q8_0_group),
            (false, GgmlType::Q4_1) => $each!($ctx; scalar::dot_q4_1_q8_1_tokens, scalar::dot_q4_1_q8_1_group),
            (false, GgmlType::Q5_0) => $each!($ctx; scalar::dot_q5_0_q8_0_tokens, scalar::dot_q5_0_q8_0_group),
            (false, GgmlType::Q5_1) => $each!($ctx; scalar::dot_q5_1_q8_1_tokens, scalar::dot_q5_1_q8_1_group),
            _ => {}
        }
    };
}

/// Same for the K-quants (Q8_K activations).
macro_rules! q8_k_kernels {
    ($simd:expr, $ty:expr, $each:ident, $ctx:tt) => {
        match ($simd, $ty) {
            (true, GgmlType::Q2_K) => $each!($ctx; dot_q2_k_q8_k_tokens),
            (true, GgmlType::Q3_K) => $each!($ctx; dot_q3_k_q8_k_tokens),
            (true, GgmlType::Q4_K) => $each!($ctx; dot_q4_k_q8_k_tokens),
            (true, GgmlType::Q5_K) => $each!($ctx; dot_q5_k_q8_k_tokens),
            (true, GgmlType::Q6_K) => $each!($ctx; dot_q6_k_q8_k_tokens),
            (false, GgmlType::Q2_K) => $each!($ctx; scalar::dot_q2_k_q8_k_tokens),
            (false, GgmlType::Q3_K) => $each!($ctx; scalar::dot_q3_k_q8_k_tokens),
            (false, GgmlType::Q4_K) => $each!($ctx; scalar::dot_q4_k_q8_k_tokens),
            (false, GgmlType::Q5_K) => $each!($ctx; scalar::dot_q5_k_q8_k_tokens),
            (false, GgmlType::Q6_K) => $each!($ctx; scalar::dot_q6_k_q8_k_tokens),
            _ => {}
        }
    };
}

/// The rows of `dot_rows_*_with` through one row kernel (and group kernel) for N activations.
macro_rules! each_row {
    (($store:ident, $matrix:ident, $rows:ident, $packed_end:ident); $row_kernel:path, [$($x:ident),+]) => {{
        for r in $packed_end..$rows.end {
            $store(r, &$row_kernel($matrix.raw_row(r), [$($x),+]));
        }
    }};
    (($store:ident, $matrix:ident, $rows:ident, $packed_end:ident); $row_kernel:path, $group_kernel:path, [$($x:ident),+]) => {{
        for g in $rows.start / ROWS..$packed_end / ROWS {
            let sums = $group_kernel($matrix.group(g), $matrix.layout, [$($x),+]);
            for lane in 0..ROWS {
                $store(g * ROWS + lane, &sums.map(|token| token[lane]));
            }
        }
        for r in $packed_end..$rows.end {
            $store(r, &$row_kernel($matrix.raw_row(r), [$($x),+]));
        }
    }};
}

/// `each_row` with the kernel instances for as many tokens as `$xs` holds.
macro_rules! by_count {
    (($xs:ident, $($ctx:ident),+); $($kernel:path),+) => {
        match *$xs {
            [a] => each_row!(($($ctx),+); $($kernel),+, [a]),
            [a, b] => each_row!(($($ctx),+); $($kernel),+, [a, b]),
            [a, b, c] => each_row!(($($ctx),+); $($kernel),+, [a, b, c]),
            _ => {} // callers pass 1..=MAX_TOKENS activations
        }
    };
}

/// Rows `rows` of a 32-block type's matrix (`rows.start` a multiple of `packed::ROWS`) ·
/// 1..=MAX_TOKENS Q8_0 / Q8_1 activations, through the SIMD128 kernels (when built and `simd`)
/// or the scalar ones; `store(r, sums)` gets row r's results, one per activation. Packed groups
/// (Q8_0 / Q4_0) go through the group kernel, every other row through the row kernel; both
/// give the same bits. The kernel instance for that many tokens is picked once, not per row.
pub fn dot_rows_q8_with(
    simd: bool,
    ty: GgmlType,
    matrix: PackedMatrix,
    rows: Range<usize>,
    xs: &[Q8Activation],
    mut store: impl FnMut(usize, &[f32]),
) {
    let packed_end = rows.end.min(matrix.packed_rows).max(rows.start);
    q8_kernels!(simd && HAS_SIMD, ty, by_count, (xs, store, matrix, rows, packed_end));
}

/// The same for a K-quant's rows · Q8_K activations (no packed groups).
pub fn dot_rows_q8_k_with(
    simd: bool,
    ty: GgmlType,
    matrix: PackedMatrix,
    rows: Range<usize>,
    xs: &[Q8KActivation],
    mut store: impl FnMut(usize, &[f32]),
) {
    let packed_end = rows.end.min(matrix.packed_rows).max(rows.start);
    q8_k_kernels!(simd && HAS_SIMD, ty, by_count, (xs, store, matrix, rows, packed_end));
}

/// `dot_rows_q8_with` through the build's kernels: a 32-block type's rows · Q8_0 / Q8_1 activations.
pub fn dot_rows_q8(
    ty: GgmlType,
    matrix: PackedMatrix,
    rows: Range<usize>,
    xs: &[Q8Activation],
    store: impl FnMut(usize, &[f32]),
) {
    dot_rows_q8_with(HAS_SIMD, ty, matrix, rows, xs, store)
}

/// `dot_rows_q8_k_with` through the build's kernels: a K-quant's rows · Q8_K activations.
pub fn dot_rows_q8_k(
    ty: GgmlType,
    matrix: PackedMatrix,
    rows: Range<usize>,
    xs: &[Q8KActivation],
    store: impl FnMut(usize, &[f32]),
) {
    dot_rows_q8_k_with(HAS_SIMD, ty, matrix, rows, xs, store)
}

/// Every path of `dot_row` for one activation kind: `dot_rows` is that kind's `dot_rows_*_with`.
macro_rules! every_path {
    ($ty:expr, $simd:expr, $row:expr, $x:expr, $dot_rows:ident) => {{
        const COPIES: usize = ROWS + 1;
        let (ty, row) = ($ty, $row);
        let layout = GroupLayout::new(ty, row.len() / ty.block_bytes());
        let mut data: Vec<u8> = try_vec(COPIES * row.len())?;
        for copy in data.chunks_exact_mut(row.len()) {
            copy.copy_from_slice(row);
        }
        let packed = pack_in_place(&mut data, layout, &mut try_vec(layout.bytes())?);
        let matrix = PackedMatrix::new(&data, COPIES, layout, packed);
        let mut results = Vec::new();
        for count in 1..=MAX_TOKENS {
            let xs = [$x; MAX_TOKENS];
            $dot_rows($simd, ty, matrix, 0..COPIES, &xs[..count], |_, sums| results.extend_from_slice(sums));
        }
        let first = results.first().copied().unwrap_or(f32::NAN);
        let complete = results.len() == COPIES * MAX_TOKENS * (MAX_TOKENS + 1) / 2;
        if complete && results.iter().all(|r| r.to_bits() == first.to_bits()) {
            first
        } else {
            f32::NAN
        }
    }};
}

/// One weight row (raw GGUF bytes) · one f32 activation vector through the real path:
/// activation conversion, then the scalar or SIMD128 dot. A quantized row goes through every
/// quantized path at once: the activation converted by the build's kernel and by the scalar
/// one, the row copied into a matrix of one packed group (for the types that pack, unless a
/// scale is inf or NaN) and one raw row, dotted with 1..=MAX_TOKENS copies of the activation;
/// the result is NaN unless all those give the same bits. Test hook behind `rg_kernel_dot`;
/// allocates, so not for the hot path.
pub fn dot_row(ty: GgmlType, use_simd: bool, row: &[u8], x: &[f32]) -> Result<f32, Status> {
    if x.len() % ty.block_size() != 0 {
        return Err(ERR_BAD_ARGUMENT);
    }
    let simd = use_simd && HAS_SIMD;
    let mut needs = Needs::default();
    needs.add(ty.activation());
    let quantizers = if simd { QUANTIZERS } else { scalar::QUANTIZERS };
    let mut input = PreparedInput::new(x.len(), 1)?;
    input.prepare_with(quantizers, x, 1, needs);
    // Same call through the SIMD128 module (when built) or the scalar one.
    macro_rules! dot {
        ($kernel:ident($($arg:expr),*)) => {
            if simd { $kernel($($arg),*) } else { scalar::$kernel($($arg),*) }
        };
    }
    let halves = || read_words(row, |b| u16::from_le_bytes([b[0], b[1]]), 2);
    if !ty.is_quantized() {
        return Ok(match ty {
            GgmlType::F16 => dot!(dot_f16(&halves()?, input.f16_rounded(0))),
            GgmlType::BF16 => dot!(dot_bf16(&halves()?, input.bf16_rounded(0))),
            _ => dot!(dot_f32(&read_words(row, |b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]), 4)?, x)),
        });
    }
    let mut reference = PreparedInput::new(x.len(), 1)?;
    reference.prepare_with(scalar::QUANTIZERS, x, 1, needs);
    let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
    Ok(if ty.activation() == Activation::Q8_K {
        let fields = |a: Q8KActivation<'_>| (bits(a.d), a.qs.to_vec(), a.bsums.to_vec(), a.relaxed.to_vec());
        if fields(input.q8_k(0)) != fields(reference.q8_k(0)) {
            return Ok(f32::NAN);
        }
        every_path!(ty, simd, row, reference.q8_k(0), dot_rows_q8_k_with)
    } else {
        let fields = |a: Q8Activation<'_>| {
            let values = (a.qs.to_vec(), a.sums.to_vec(), a.q4_mix.to_vec(), a.nibble_order.to_vec());
            (bits(a.scales), bits(a.q8_1_s), values)
        };
        if fields(input.q8(0)) != fields(reference.q8(0)) {
            return Ok(f32::NAN);
        }
        every_path!(ty, simd, row, reference.q8(0), dot_rows_q8_with)
    })
}

/// The element-wise helpers behind `rg_kernel_map`, whose SIMD128 twins run a vector body and a
/// scalar tail: 0 rounds `values` to f16 (`round_to_f16`), 1 is `exp_shifted(values, arg)`, 2
/// narrows `values` to halves and widens them back through `widen_f16_rows` (one row), 3 is
/// `silu_mul(values, [arg; n])`.
pub fn map(op: u32, use_simd: bool, values: &mut [f32], arg: f32) -> Result<(), Status> {
    let simd = use_simd && HAS_SIMD;
    match op {
        0 if simd => round_to_f16(values),
        0 => scalar::round_to_f16(values),
        1 if simd => exp_shifted(values, arg),
        1 => scalar::exp_shifted(values, arg),
        2 => {
            let mut halves = try_vec(values.len())?;
            crate::f16::f32_to_f16_row(values, &mut halves);
            let width = values.len();
            if simd {
                widen_f16_rows(&halves, width, values, width)
            } else {
                scalar::widen_f16_rows(&halves, width, values, width)
            }
        }
        3 => {
            let mut up = try_vec(values.len())?;
            up.fill(arg);
            if simd {
                silu_mul(values, &up)
            } else {
                scalar::silu_mul(values, &up)
            }
        }
        _ => return Err(ERR_BAD_ARGUMENT),
    }
    Ok(())
}

/// Copies little-endian words out of a byte row that may be unaligned.
fn read_words<T: Copy + Default>(row: &[u8], read: impl Fn(&[u8]) -> T, size: usize) -> Result<Vec<T>, Status> {
    let mut words = try_vec(row.len() / size)?;
    for (w, bytes) in words.iter_mut().zip(row.chunks_exact(size)) {
        *w = read(bytes);
    }
    Ok(words)
}
