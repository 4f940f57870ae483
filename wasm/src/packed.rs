//! The in-memory layout of quantized matrices once their owner is ready. Q8_0 / Q4_0 rows are
//! repacked in place, four at a time, so that one pass over the activation serves four
//! weight rows and their four block scales load as one vector.
//!
//! A group of `ROWS` rows with `blocks` blocks each keeps its bytes (`ROWS` raw rows)
//! but orders them block by block: block b's four f16 scales (rows 0..4), then its quant
//! bytes of rows 0..4 (`quant_bytes` each). A matmul thus reads one sequential stream
//! (measured: a fifth faster on a memory-bound Q8_0 pass than scales kept apart). Rows past
//! the last whole group keep the raw GGUF layout. Values are unchanged; only their places move.
//!
//! Q4_0 nibbles also move inside their block: byte k (k < 8) holds elements k (low nibble)
//! and 8 + k, byte 8 + k elements 16 + k and 24 + k. Each 8-byte half widened to u16 lanes
//! then holds lo + 16·hi in element order, and one shift gives hi (see `quant::Q8Activation`).
//!
//! The other types keep the raw GGUF layout; their row kernels stream each block once for
//! all the tokens of a batch.

use crate::f16::MAX_FINITE;
use crate::quant::{GgmlType, Q4_0_BLOCK_BYTES};

/// Rows per packed group.
pub const ROWS: usize = 4;

/// Byte offsets inside one packed group.
#[derive(Clone, Copy, Debug)]
pub struct GroupLayout {
    pub ty: GgmlType,
    pub blocks: usize,
    /// Bytes per block after its f16 scale: 32 (Q8_0) or 16 (Q4_0). For the types that do not
    /// pack, only `blocks · (quant_bytes + 2)`, the row size, means something.
    pub quant_bytes: usize,
}

impl GroupLayout {
    pub fn new(ty: GgmlType, blocks: usize) -> GroupLayout {
        GroupLayout { ty, blocks, quant_bytes: ty.block_bytes() - 2 }
    }

    /// Whether this type has group kernels (Q8_0, Q4_0); other types' rows stay raw.
    pub fn packs(&self) -> bool {
        matches!(self.ty, GgmlType::Q8_0 | GgmlType::Q4_0)
    }

    /// Bytes of the whole group: `ROWS` raw rows.
    pub fn bytes(&self) -> usize {
        ROWS * self.blocks * (self.quant_bytes + 2)
    }

    /// Where row `lane`'s quant bytes of block `b` start.
    #[inline(always)]
    pub fn quants(&self, b: usize, lane: usize) -> usize {
        self.scales(b) + ROWS * 2 + lane * self.quant_bytes
    }

    /// Where the four f16 scales of block `b` start (row `lane`'s is at + 2·lane).
    #[inline(always)]
    pub fn scales(&self, b: usize) -> usize {
        b * ROWS * (self.quant_bytes + 2)
    }

    /// Reorders `ROWS` raw rows (`group`) into the packed layout; `scratch` holds one group.
    fn pack(&self, group: &mut [u8], scratch: &mut [u8]) {
        let (qb, row_bytes) = (self.quant_bytes, self.blocks * (self.quant_bytes + 2));
        let scratch = &mut scratch[..group.len()];
        scratch.copy_from_slice(group);
        for (lane, row) in scratch.chunks_exact(row_bytes).enumerate() {
            for (b, block) in row.chunks_exact(qb + 2).enumerate() {
                let scale = self.scales(b) + 2 * lane;
                group[scale..scale + 2].copy_from_slice(&block[..2]);
                let quants = &mut group[self.quants(b, lane)..][..qb];
                if qb == Q4_0_QUANT_BYTES {
                    shuffle_nibbles(&block[2..], quants);
                } else {
                    quants.copy_from_slice(&block[2..]);
                }
            }
        }
    }

    /// Block b of row `lane` of a packed group: its f16 scale bits, and its quant bytes in
    /// GGUF order written to `quants` (`quant_bytes` long).
    pub fn block(&self, group: &[u8], b: usize, lane: usize, quants: &mut [u8]) -> u16 {
        let packed = &group[self.quants(b, lane)..][..self.quant_bytes];
        if self.quant_bytes == Q4_0_QUANT_BYTES {
            unshuffle_nibbles(packed, quants);
        } else {
            quants.copy_from_slice(packed);
        }
        let scale = self.scales(b) + 2 * lane;
        u16::from_le_bytes([group[scale], group[scale + 1]])
    }
}

const Q4_0_QUANT_BYTES: usize = Q4_0_BLOCK_BYTES - 2;

/// GGUF byte j holds elements j (low nibble) and j + 16; packed byte k (k < 8) holds
/// elements k and 8 + k, byte 8 + k elements 16 + k and 24 + k.
fn shuffle_nibbles(raw: &[u8], packed: &mut [u8]) {
    for k in 0..8 {
        let (a, b) = (raw[k], raw[8 + k]);
        packed[k] = (a & 15) | (b << 4);
        packed[8 + k] = (a >> 4) | (b & 0xf0);
    }
}

fn unshuffle_nibbles(packed: &[u8], raw: &mut [u8]) {
    for k in 0..8 {
        let (low, high) = (packed[k], packed[8 + k]);
        raw[k] = (low & 15) | (high << 4);
        raw[8 + k] = (low >> 4) | (high & 0xf0);
    }
}

/// A quantized matrix after `pack_in_place`: whole groups packed, the remaining rows raw.
#[derive(Clone, Copy)]
pub struct PackedMatrix<'a> {
    pub data: &'a [u8],
    pub rows: usize,
    /// Rows in packed groups: `rows` rounded down to whole groups once packed, 0 before.
    pub packed_rows: usize,
    pub layout: GroupLayout,
}

impl<'a> PackedMatrix<'a> {
    pub fn row_bytes(&self) -> usize {
        self.layout.blocks * (self.layout.quant_bytes + 2)
    }

    /// The packed group holding rows `ROWS·g .. ROWS·g + ROWS`.
    pub fn group(&self, g: usize) -> &'a [u8] {
        &self.data[g * self.layout.bytes()..][..self.layout.bytes()]
    }

    /// Row r ≥ `packed_rows`, in raw GGUF layout.
    pub fn raw_row(&self, r: usize) -> &'a [u8] {
        &self.data[r * self.row_bytes()..][..self.row_bytes()]
    }

    /// Block b of row r: its f16 scale bits, and its quant bytes in GGUF order written to
    /// `quants` (`layout.quant_bytes` long).
    pub fn block(&self, r: usize, b: usize, quants: &mut [u8]) -> u16 {
        if r < self.packed_rows {
            return self.layout.block(self.group(r / ROWS), b, r % ROWS, quants);
        }
        let block = &self.raw_row(r)[b * (self.layout.quant_bytes + 2)..][..self.layout.quant_bytes + 2];
        quants.copy_from_slice(&block[2..]);
        u16::from_le_bytes([block[0], block[1]])
    }
}

/// Packs every whole group of `data` (raw rows) in place when its type `packs`, through
/// `scratch` (at least `layout.bytes()` long): one group at a time, never a second copy of the
/// matrix. Returns false, leaving `data` raw, when some block scale is inf or NaN: the group
/// kernels widen scales by the shorter steps that are exact for finite halves only (and for
/// the types that do not pack).
pub fn pack_in_place(data: &mut [u8], layout: GroupLayout, scratch: &mut [u8]) -> bool {
    if !layout.packs() {
        return false;
    }
    let block_bytes = layout.quant_bytes + 2;
    let finite = data.chunks_exact(block_bytes).all(|b| u16::from_le_bytes([b[0], b[1]]) & 0x7fff <= MAX_FINITE);
    if finite {
        for group in data.chunks_exact_mut(layout.bytes()) {
            layout.pack(group, scratch);
        }
    }
    finite
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_matrix_with_an_inf_or_nan_scale_stays_raw() {
        let layout = GroupLayout::new(GgmlType::Q4_0, 2);
        for special in [0x7c00u16, 0xfe00] {
            let mut data = vec![0x11u8; 2 * layout.bytes()];
            data[layout.bytes() + 18..][..2].copy_from_slice(&special.to_le_bytes());
            let raw = data.clone();
            assert!(!pack_in_place(&mut data, layout, &mut vec![0; layout.bytes()]));
            assert_eq!(data, raw);
        }
    }

    #[test]
    fn packed_blocks_read_back_as_the_raw_ones() {
        for (ty, blocks) in [(GgmlType::Q8_0, 3), (GgmlType::Q4_0, 5)] {
            let layout = GroupLayout::new(ty, blocks);
            let row_bytes = layout.bytes() / ROWS;
            // Two whole groups and two raw rows.
            let mut raw: Vec<u8> = (0..row_bytes * 10).map(|i| (i * 7 + i / 13) as u8).collect();
            for scale_high_byte in raw.iter_mut().skip(1).step_by(layout.quant_bytes + 2) {
                *scale_high_byte &= 0xbf; // a finite half: its exponent field is below 31
            }
            let mut data = raw.clone();
            assert!(pack_in_place(&mut data, layout, &mut vec![0; layout.bytes()]));
            assert_ne!(data, raw);
            assert_eq!(data[8 * row_bytes..], raw[8 * row_bytes..]);
            let matrix = PackedMatrix { data: &data, rows: 10, packed_rows: 8, layout };
            for r in 0..10 {
                for b in 0..blocks {
                    let block = &raw[r * row_bytes + b * (layout.quant_bytes + 2)..][..layout.quant_bytes + 2];
                    let mut quants = vec![0; layout.quant_bytes];
                    let scale = matrix.block(r, b, &mut quants);
                    assert_eq!(scale.to_le_bytes(), block[..2], "{ty:?} row {r} block {b}");
                    assert_eq!(quants, &block[2..], "{ty:?} row {r} block {b}");
                }
            }
        }
    }
}
