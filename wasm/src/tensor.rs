//! Weight tensors: raw GGUF bytes in memory the model owns, and the matmul over them.

use crate::error::{try_vec, Status, ERR_BAD_SHAPE, ERR_TOO_LARGE};
use crate::f16::f16_to_f32;
use crate::kernels;
use crate::packed::{pack_in_place, GroupLayout, PackedMatrix, ROWS};
use crate::quant::{dequantize_block_q4_0, dequantize_block_q8_0, GgmlType, PreparedInput, Q8Activation, QK};

/// Weight rows per tile of a quantized matmul (a multiple of `packed::ROWS`): 64 rows of
/// 4096 Q8_0 values are 272 KiB, which a cache holds while every group of tokens passes over them.
const ROW_TILE: usize = 64;

/// Largest single tensor: Vec cannot exceed isize::MAX bytes on wasm32.
const MAX_TENSOR_BYTES: u64 = i32::MAX as u64;

/// Storage typed by element so F32/F16 rows can be read in place (aligned);
/// quantized blocks (34 or 18 bytes) are read bytewise: raw GGUF rows as written,
/// then, once `pack` has run, in the layout of `packed` (same bytes, other places).
enum Data {
    F32(Vec<f32>),
    F16(Vec<u16>),
    Blocks { bytes: Vec<u8>, packed: bool },
}

pub struct Tensor {
    pub ty: GgmlType,
    pub rows: usize,
    pub cols: usize,
    data: Data,
}

impl Tensor {
    /// Zeroed room for `rows × cols` values of `ty`, exactly the GGUF byte size.
    pub fn alloc(ty: GgmlType, rows: usize, cols: usize) -> Result<Tensor, Status> {
        let row_bytes = ty.row_bytes(cols).ok_or(ERR_BAD_SHAPE)?;
        let bytes =
            (rows as u64).checked_mul(row_bytes as u64).filter(|&b| b <= MAX_TENSOR_BYTES).ok_or(ERR_TOO_LARGE)?;
        let values = rows * cols; // ≤ bytes · 2, fits
        let data = match ty {
            GgmlType::F32 => Data::F32(try_vec(values)?),
            GgmlType::F16 => Data::F16(try_vec(values)?),
            GgmlType::Q4_0 | GgmlType::Q8_0 => Data::Blocks { bytes: try_vec(bytes as usize)?, packed: false },
        };
        Ok(Tensor { ty, rows, cols, data })
    }

    /// Where the caller writes the tensor's raw little-endian bytes.
    pub fn bytes_mut(&mut self) -> *mut u8 {
        match &mut self.data {
            Data::F32(v) => v.as_mut_ptr() as *mut u8,
            Data::F16(v) => v.as_mut_ptr() as *mut u8,
            Data::Blocks { bytes, .. } => bytes.as_mut_ptr(),
        }
    }

    fn layout(&self) -> GroupLayout {
        GroupLayout::new(self.ty, self.cols / QK)
    }

    /// Scratch bytes `pack` needs (0 for F32/F16).
    pub fn pack_scratch_bytes(&self) -> usize {
        if self.ty.is_quantized() {
            self.layout().bytes()
        } else {
            0
        }
    }

    /// Repacks a quantized matrix in place for the group kernels (see `packed`; a matrix with
    /// an inf or NaN scale stays raw); once only, after its bytes are written. `scratch` holds
    /// at least `pack_scratch_bytes()`.
    pub fn pack(&mut self, scratch: &mut [u8]) {
        let layout = self.layout();
        if let Data::Blocks { bytes, packed: packed @ false } = &mut self.data {
            *packed = pack_in_place(bytes, layout, scratch);
        }
    }

    /// This tensor's quantized `bytes` as a matrix, packed or not yet.
    fn matrix<'a>(&self, bytes: &'a [u8], packed: bool) -> PackedMatrix<'a> {
        let packed_rows = if packed { self.rows - self.rows % ROWS } else { 0 };
        PackedMatrix { data: bytes, rows: self.rows, packed_rows, layout: self.layout() }
    }

    /// The values of an F32 tensor (norm weights); None for other types.
    pub fn into_f32(self) -> Option<Vec<f32>> {
        match self.data {
            Data::F32(v) => Some(v),
            _ => None,
        }
    }

    /// Row `r` as f32 (embedding lookup).
    pub fn dequantize_row(&self, r: usize, out: &mut [f32]) {
        let cols = self.cols;
        match &self.data {
            Data::F32(v) => out.copy_from_slice(&v[r * cols..][..cols]),
            Data::F16(v) => {
                for (o, &h) in out.iter_mut().zip(&v[r * cols..][..cols]) {
                    *o = f16_to_f32(h);
                }
            }
            Data::Blocks { bytes, packed } => {
                let matrix = self.matrix(bytes, *packed);
                let mut quants = [0u8; QK];
                let quants = &mut quants[..matrix.layout.quant_bytes];
                for (b, values) in out.chunks_exact_mut(QK).enumerate() {
                    let d = f16_to_f32(matrix.block(r, b, quants));
                    if self.ty == GgmlType::Q8_0 {
                        dequantize_block_q8_0(d, quants, values)
                    } else {
                        dequantize_block_q4_0(d, quants, values)
                    }
                }
            }
        }
    }

    /// `out[t][r] = row r · x[t]` for n tokens. Weight rows outside (in tiles for quantized
    /// types), tokens inside, so the weights are read from memory once per batch; quantized
    /// blocks are also unpacked once per group of up to `kernels::MAX_TOKENS` tokens. Every
    /// (row, token) result is bit-identical to a single-token call. `input` must have been
    /// prepared from `x` for this tensor's type.
    pub fn matmul(&self, x: &[f32], input: &PreparedInput, n: usize, out: &mut [f32]) {
        let (rows, cols) = (self.rows, self.cols);
        let out = &mut out[..n * rows];
        match &self.data {
            Data::F32(w) => fill(out, rows, n, |r, t| kernels::dot_f32(&w[r * cols..][..cols], &x[t * cols..][..cols])),
            Data::F16(w) => fill(out, rows, n, |r, t| kernels::dot_f16(&w[r * cols..][..cols], input.f16_rounded(t))),
            Data::Blocks { bytes, packed } => {
                // Tiles of rows small enough to stay in cache while every token group passes
                // over them; a group's activations are looked up once per tile.
                let (matrix, q8_0) = (self.matrix(bytes, *packed), self.ty == GgmlType::Q8_0);
                for tile in (0..rows).step_by(ROW_TILE) {
                    for first in (0..n).step_by(kernels::MAX_TOKENS) {
                        let count = (n - first).min(kernels::MAX_TOKENS);
                        let group: [Q8Activation; kernels::MAX_TOKENS] =
                            std::array::from_fn(|i| input.q8(first + i.min(count - 1)));
                        let tile_rows = tile..(tile + ROW_TILE).min(rows);
                        kernels::dot_rows_quantized(q8_0, matrix, tile_rows, &group[..count], |r, sums| {
                            for (t, &sum) in sums.iter().enumerate() {
                                out[(first + t) * rows + r] = sum;
                            }
                        });
                    }
                }
            }
        }
    }
}

#[inline(always)]
fn fill(out: &mut [f32], rows: usize, n: usize, dot: impl Fn(usize, usize) -> f32) {
    for r in 0..rows {
        for t in 0..n {
            out[t * rows + r] = dot(r, t);
        }
    }
}

/// Which conversions an input needs for the tensors that consume it.
pub fn input_needs(consumers: &[&Tensor]) -> (bool, bool) {
    let want_f16 = consumers.iter().any(|t| t.ty == GgmlType::F16);
    let want_q8 = consumers.iter().any(|t| t.ty.is_quantized());
    (want_f16, want_q8)
}
