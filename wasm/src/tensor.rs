//! Weight tensors: raw GGUF bytes in memory the model owns, and the matmul over them.

use crate::blocks::dequantize_row;
use crate::error::{try_vec, Status, ERR_BAD_SHAPE, ERR_TOO_LARGE};
use crate::f16::{bf16_to_f32, f16_to_f32};
use crate::kernels;
use crate::packed::{pack_in_place, GroupLayout, PackedMatrix};
use crate::quant::{Activation, GgmlType, Needs, PreparedInput};

/// Weight rows per tile of a quantized matmul (a multiple of `packed::ROWS`): 64 rows of
/// 4096 Q8_0 values are 272 KiB, which a cache holds while every group of tokens passes over them.
const ROW_TILE: usize = 64;

/// Bytes of the largest quantized block (Q6_K).
const MAX_BLOCK_BYTES: usize = GgmlType::Q6_K.block_bytes();

/// Largest single tensor: Vec cannot exceed isize::MAX bytes on wasm32.
const MAX_TENSOR_BYTES: u64 = i32::MAX as u64;

/// Storage typed by element so F32/F16/BF16 rows can be read in place (aligned);
/// quantized blocks are read bytewise: raw GGUF rows as written, then, once `pack` has run,
/// in the layout of `packed` (same bytes, other places).
enum Data {
    F32(Vec<f32>),
    F16(Vec<u16>),
    BF16(Vec<u16>),
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
            GgmlType::BF16 => Data::BF16(try_vec(values)?),
            _ => Data::Blocks { bytes: try_vec(bytes as usize)?, packed: false },
        };
        Ok(Tensor { ty, rows, cols, data })
    }

    /// Where the caller writes the tensor's raw little-endian bytes.
    pub fn bytes_mut(&mut self) -> *mut u8 {
        match &mut self.data {
            Data::F32(v) => v.as_mut_ptr() as *mut u8,
            Data::F16(v) | Data::BF16(v) => v.as_mut_ptr() as *mut u8,
            Data::Blocks { bytes, .. } => bytes.as_mut_ptr(),
        }
    }

    fn layout(&self) -> GroupLayout {
        GroupLayout::new(self.ty, self.cols / self.ty.block_size())
    }

    /// Scratch bytes `pack` needs (0 for the types that do not form groups).
    pub fn pack_scratch_bytes(&self) -> usize {
        let layout = self.layout();
        if layout.groups() {
            layout.bytes()
        } else {
            0
        }
    }

    /// Repacks a quantized matrix in place for its kernels (see `packed`: groups of the 32-block
    /// types, unless a d or m is inf or NaN; the K-quants' kernel order); once only, after its
    /// bytes are written. `scratch` holds at least `pack_scratch_bytes()`.
    pub fn pack(&mut self, scratch: &mut [u8]) {
        let layout = self.layout();
        if let Data::Blocks { bytes, packed: packed @ false } = &mut self.data {
            *packed = pack_in_place(bytes, layout, scratch);
        }
    }

    /// This tensor's quantized `bytes` as a matrix, packed or not yet.
    fn matrix<'a>(&self, bytes: &'a [u8], packed: bool) -> PackedMatrix<'a> {
        PackedMatrix::new(bytes, self.rows, self.layout(), packed)
    }

    /// The values of an F32 tensor (norm weights); None for other types.
    pub fn into_f32(self) -> Option<Vec<f32>> {
        match self.data {
            Data::F32(v) => Some(v),
            _ => None,
        }
    }

    /// Row `r` as f32 (embedding lookup, norm and bias vectors), with ggml's f32 steps.
    pub fn dequantize_row(&self, r: usize, out: &mut [f32]) {
        let cols = self.cols;
        let out = &mut out[..cols];
        match &self.data {
            Data::F32(v) => out.copy_from_slice(&v[r * cols..][..cols]),
            Data::F16(v) => out.iter_mut().zip(&v[r * cols..][..cols]).for_each(|(o, &h)| *o = f16_to_f32(h)),
            Data::BF16(v) => out.iter_mut().zip(&v[r * cols..][..cols]).for_each(|(o, &h)| *o = bf16_to_f32(h)),
            Data::Blocks { bytes, packed } => {
                let matrix = self.matrix(bytes, *packed);
                if !*packed {
                    return dequantize_row(self.ty, matrix.raw_row(r), out);
                }
                // Its blocks gathered back into GGUF order.
                let mut block = [0u8; MAX_BLOCK_BYTES];
                for (b, values) in out.chunks_exact_mut(self.ty.block_size()).enumerate() {
                    matrix.block(r, b, &mut block);
                    dequantize_row(self.ty, &block[..self.ty.block_bytes()], values);
                }
            }
        }
    }

    /// A new tensor of rows `rows` of this one (same type and values; packed as `pack` leaves a
    /// matrix): the rows of the output matrix a recycle head's shortlist computes. Rows must be
    /// in range (the caller checks).
    pub fn gather_rows(&self, rows: &[usize]) -> Result<Tensor, Status> {
        let mut out = Tensor::alloc(self.ty, rows.len(), self.cols)?;
        let cols = self.cols;
        match (&self.data, &mut out.data) {
            (Data::F32(w), Data::F32(o)) => {
                for (i, &r) in rows.iter().enumerate() {
                    o[i * cols..][..cols].copy_from_slice(&w[r * cols..][..cols]);
                }
            }
            (Data::F16(w), Data::F16(o)) | (Data::BF16(w), Data::BF16(o)) => {
                for (i, &r) in rows.iter().enumerate() {
                    o[i * cols..][..cols].copy_from_slice(&w[r * cols..][..cols]);
                }
            }
            (Data::Blocks { bytes, packed }, Data::Blocks { bytes: o, .. }) => {
                let matrix = self.matrix(bytes, *packed);
                let row_bytes = matrix.row_bytes();
                // Each row back in GGUF bytes (from a packed group or kernel order); `pack` below lays them out again.
                for (i, &r) in rows.iter().enumerate() {
                    let dest = &mut o[i * row_bytes..][..row_bytes];
                    for (b, block) in dest.chunks_exact_mut(self.ty.block_bytes()).enumerate() {
                        matrix.block(r, b, block);
                    }
                }
            }
            _ => return Err(ERR_BAD_SHAPE), // alloc gives the same storage for the same type
        }
        let mut scratch = try_vec(out.pack_scratch_bytes())?;
        out.pack(&mut scratch);
        Ok(out)
    }

    /// `out[t][r] = row r · x[t]` for n tokens. Weight rows outside (in tiles for quantized
    /// types), tokens inside, so the weights are read from memory once per batch; quantized
    /// blocks are also unpacked once per group of up to `kernels::MAX_TOKENS` tokens. Every
    /// (row, token) result is bit-identical to a single-token call. `input` must have been
    /// prepared from `x` with (at least) this tensor's `input_needs`.
    pub fn matmul(&self, x: &[f32], input: &PreparedInput, n: usize, out: &mut [f32]) {
        let (rows, cols) = (self.rows, self.cols);
        let out = &mut out[..n * rows];
        match &self.data {
            Data::F32(w) => fill(out, rows, n, |r, t| kernels::dot_f32(&w[r * cols..][..cols], &x[t * cols..][..cols])),
            Data::F16(w) => fill(out, rows, n, |r, t| kernels::dot_f16(&w[r * cols..][..cols], input.f16_rounded(t))),
            Data::BF16(w) => {
                fill(out, rows, n, |r, t| kernels::dot_bf16(&w[r * cols..][..cols], input.bf16_rounded(t)))
            }
            Data::Blocks { bytes, packed } => {
                let matrix = self.matrix(bytes, *packed);
                if self.ty.activation() == Activation::Q8_K {
                    tiles(
                        rows,
                        n,
                        out,
                        |t| input.q8_k(t),
                        |tile_rows, xs, store| kernels::dot_rows_q8_k(self.ty, matrix, tile_rows, xs, store),
                    );
                } else {
                    tiles(
                        rows,
                        n,
                        out,
                        |t| input.q8(t),
                        |tile_rows, xs, store| kernels::dot_rows_q8(self.ty, matrix, tile_rows, xs, store),
                    );
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

/// Tiles of rows small enough to stay in cache while every group of up to
/// `kernels::MAX_TOKENS` tokens passes over them; a group's activations (`activation(t)`) are
/// looked up once per tile, and `dot_rows(tile_rows, group, store)` fills `out[t][r]`.
#[inline(always)]
fn tiles<X: Copy>(
    rows: usize,
    n: usize,
    out: &mut [f32],
    activation: impl Fn(usize) -> X,
    dot_rows: impl Fn(std::ops::Range<usize>, &[X], &mut dyn FnMut(usize, &[f32])),
) {
    for tile in (0..rows).step_by(ROW_TILE) {
        for first in (0..n).step_by(kernels::MAX_TOKENS) {
            let count = (n - first).min(kernels::MAX_TOKENS);
            let group: [X; kernels::MAX_TOKENS] = std::array::from_fn(|i| activation(first + i.min(count - 1)));
            dot_rows(tile..(tile + ROW_TILE).min(rows), &group[..count], &mut |r, sums| {
                for (t, &sum) in sums.iter().enumerate() {
                    out[(first + t) * rows + r] = sum;
                }
            });
        }
    }
}

/// Which conversions an input needs for the tensors that consume it.
pub fn input_needs(consumers: &[&Tensor]) -> Needs {
    let mut needs = Needs::default();
    for tensor in consumers {
        needs.add(tensor.ty.activation());
    }
    needs
}
