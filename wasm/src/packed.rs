//! The in-memory layout of quantized matrices once their owner is ready. Rows of the 32-block
//! types (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1) are repacked in place, four at a time, so that one pass
//! over the activation serves four weight rows and their f16 fields load as vectors.
//!
//! A group of `ROWS` rows with `blocks` blocks each keeps its bytes (`ROWS` raw rows) but orders
//! them block by block: block b's four d (rows 0..4), then its four m (Q4_1, Q5_1), then its
//! rows' fifth bits as one `plane` (Q5_0, Q5_1), then its quant bytes of rows 0..4
//! (`quant_bytes` each). A matmul thus reads one sequential stream (measured: a fifth faster on
//! a memory-bound Q8_0 pass than scales kept apart). Rows past the last whole group keep the raw
//! GGUF layout. Values are unchanged; only their places move.
//!
//! Nibbles (Q4_0, Q4_1, Q5_0, Q5_1) also move inside their block: byte k (k < 8) holds elements
//! k (low nibble) and 8 + k, byte 8 + k elements 16 + k and 24 + k. Each 8-byte half widened to
//! u16 lanes then holds lo + 16·hi in element order, and one shift gives hi (see
//! `quant::Q8Activation`).
//!
//! The fifth bits of the four rows (4 × 32) fill one 16-byte plane: u16 lane k holds, for each of
//! the eight (row r, half v) pairs c = 2r + v, the fifth bit of element 16v + k at bit `plane_bit(c)`
//! and that of element 16v + 8 + k four bits higher. One shift and mask then give each lane
//! 16·bit(16v + k) + 256·bit(16v + 8 + k), which added to lo + 16·hi makes it
//! (lo + 16·bit) + 16·(hi + 16·bit): the Q4 form with 5-bit values.
//!
//! The K-quants stay in rows, block by block, but their quant arrays are put in kernel order:
//! each 16 bytes (elements k..k + 16 of a super-block, or the bits of those elements) in pairs
//! (k, k + 8), as the Q8_K activation keeps its values (`quant::q8_k_position`), so that the
//! SIMD128 kernels widen them with plain loads; in the relaxed build, each 32 bytes in
//! `quant::relaxed_position` order instead (`kernel_order`). Their row kernels stream each block once for all
//! the tokens of a batch.

use crate::f16::MAX_FINITE;
use crate::quant::{q8_k_position, relaxed_position, GgmlType};

/// Rows per packed group.
pub const ROWS: usize = 4;

/// Bytes of a 32-block's fifth bits (Q5_0, Q5_1).
const QH_BYTES: usize = 4;

/// Where the (row r, half v) pair c = 2r + v keeps the fifth bit of element 16v + k in u16 lane k
/// of a plane (that of element 16v + 8 + k is 4 bits higher): 0, 1, 2, 3, 8, 9, 10, 11.
pub const fn plane_bit(c: usize) -> usize {
    c + 4 * (c / 4)
}

/// Byte offsets inside one packed group.
#[derive(Clone, Copy, Debug)]
pub struct GroupLayout {
    pub ty: GgmlType,
    pub blocks: usize,
    /// Quant bytes per block and row: 32 (Q8_0) or 16 (the nibble types). For the types that do
    /// not pack, only `blocks · ty.block_bytes()`, the row size, means something.
    pub quant_bytes: usize,
    /// Whether blocks have an f16 m after d (Q4_1, Q5_1).
    pub has_m: bool,
    /// Whether blocks have a u32 of fifth bits (Q5_0, Q5_1).
    pub has_qh: bool,
}

impl GroupLayout {
    pub fn new(ty: GgmlType, blocks: usize) -> GroupLayout {
        let has_m = matches!(ty, GgmlType::Q4_1 | GgmlType::Q5_1);
        let has_qh = matches!(ty, GgmlType::Q5_0 | GgmlType::Q5_1);
        let head = 2 + 2 * has_m as usize + QH_BYTES * has_qh as usize;
        GroupLayout { ty, blocks, quant_bytes: ty.block_bytes().saturating_sub(head), has_m, has_qh }
    }

    /// Whether this type has group kernels (the 32-block types).
    pub fn groups(&self) -> bool {
        matches!(self.ty, GgmlType::Q8_0 | GgmlType::Q4_0 | GgmlType::Q4_1 | GgmlType::Q5_0 | GgmlType::Q5_1)
    }

    /// Whether `pack_in_place` changes this type's bytes (grouped, or in kernel order); F32, F16
    /// and BF16 stay as they are.
    pub fn packs(&self) -> bool {
        self.groups() || !kernel_order_arrays(self.ty).is_empty()
    }

    fn block_bytes(&self) -> usize {
        self.ty.block_bytes()
    }

    /// Bytes of the whole group: `ROWS` raw rows.
    pub fn bytes(&self) -> usize {
        ROWS * self.blocks * self.block_bytes()
    }

    /// Where the four f16 d of block `b` start (row `lane`'s is at + 2·lane).
    #[inline(always)]
    pub fn scales(&self, b: usize) -> usize {
        b * ROWS * self.block_bytes()
    }

    /// Where the four f16 m of block `b` start (Q4_1, Q5_1).
    #[inline(always)]
    pub fn mins(&self, b: usize) -> usize {
        self.scales(b) + 2 * ROWS
    }

    /// Where the 16-byte plane of fifth bits of block `b` starts (Q5_0, Q5_1).
    #[inline(always)]
    pub fn plane(&self, b: usize) -> usize {
        self.mins(b) + 2 * ROWS * self.has_m as usize
    }

    /// Where row `lane`'s quant bytes of block `b` start.
    #[inline(always)]
    pub fn quants(&self, b: usize, lane: usize) -> usize {
        self.plane(b) + QH_BYTES * ROWS * self.has_qh as usize + lane * self.quant_bytes
    }

    /// Reorders `ROWS` raw rows (`group`) into the packed layout; `scratch` holds one group.
    fn pack(&self, group: &mut [u8], scratch: &mut [u8]) {
        let (qb, row_bytes) = (self.quant_bytes, self.blocks * self.block_bytes());
        let scratch = &mut scratch[..group.len()];
        scratch.copy_from_slice(group);
        for b in 0..self.blocks {
            group[self.plane(b)..][..QH_BYTES * ROWS * self.has_qh as usize].fill(0);
        }
        for (lane, row) in scratch.chunks_exact(row_bytes).enumerate() {
            for (b, block) in row.chunks_exact(self.block_bytes()).enumerate() {
                let fields = self.fields(block);
                group[self.scales(b) + 2 * lane..][..2].copy_from_slice(fields.d);
                if let Some(m) = fields.m {
                    group[self.mins(b) + 2 * lane..][..2].copy_from_slice(m);
                }
                if let Some(qh) = fields.qh {
                    let qh = u32::from_le_bytes([qh[0], qh[1], qh[2], qh[3]]);
                    let plane = &mut group[self.plane(b)..][..QH_BYTES * ROWS];
                    for e in (0..32).filter(|e| qh >> e & 1 != 0) {
                        let (byte, bit) = plane_position(lane, e);
                        plane[byte] |= 1 << bit;
                    }
                }
                let quants = &mut group[self.quants(b, lane)..][..qb];
                if qb == NIBBLE_BYTES {
                    shuffle_nibbles(fields.qs, quants);
                } else {
                    quants.copy_from_slice(fields.qs);
                }
            }
        }
    }

    /// A raw block's fields, in GGUF order.
    fn fields<'b>(&self, block: &'b [u8]) -> Fields<'b> {
        let (d, rest) = block.split_at(2);
        let (m, rest) = if self.has_m { (Some(&rest[..2]), &rest[2..]) } else { (None, rest) };
        let (qh, qs) = if self.has_qh { (Some(&rest[..QH_BYTES]), &rest[QH_BYTES..]) } else { (None, rest) };
        Fields { d, m, qh, qs }
    }

    /// Block b of row `lane` of a packed group, written to `raw` as its GGUF bytes.
    pub fn block(&self, group: &[u8], b: usize, lane: usize, raw: &mut [u8]) {
        let raw = &mut raw[..self.block_bytes()];
        raw[..2].copy_from_slice(&group[self.scales(b) + 2 * lane..][..2]);
        let mut at = 2;
        if self.has_m {
            raw[at..at + 2].copy_from_slice(&group[self.mins(b) + 2 * lane..][..2]);
            at += 2;
        }
        if self.has_qh {
            let plane = &group[self.plane(b)..][..QH_BYTES * ROWS];
            let qh = (0..32).fold(0u32, |qh, e| {
                let (byte, bit) = plane_position(lane, e);
                qh | ((plane[byte] >> bit & 1) as u32) << e
            });
            raw[at..at + QH_BYTES].copy_from_slice(&qh.to_le_bytes());
            at += QH_BYTES;
        }
        let packed = &group[self.quants(b, lane)..][..self.quant_bytes];
        if self.quant_bytes == NIBBLE_BYTES {
            unshuffle_nibbles(packed, &mut raw[at..]);
        } else {
            raw[at..].copy_from_slice(packed);
        }
    }

    /// Byte offsets of a raw block's f16 fields (d, and m where there is one).
    fn half_fields(&self) -> &'static [usize] {
        if self.has_m {
            &[0, 2]
        } else {
            &[0]
        }
    }
}

struct Fields<'b> {
    d: &'b [u8],
    m: Option<&'b [u8]>,
    qh: Option<&'b [u8]>,
    qs: &'b [u8],
}

/// Byte and bit of a plane holding row `lane`'s fifth bit of element e (see the module docs).
fn plane_position(lane: usize, e: usize) -> (usize, usize) {
    let (v, k, high) = (e / 16, e % 8, (e % 16) / 8);
    let bit = plane_bit(2 * lane + v) + 4 * high;
    (2 * k + bit / 8, bit % 8)
}

const NIBBLE_BYTES: usize = 16;

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
    /// `rows` rows of `layout` in `data`, as `pack_in_place` left them (`packed`: what it returned).
    pub fn new(data: &'a [u8], rows: usize, layout: GroupLayout, packed: bool) -> PackedMatrix<'a> {
        let packed_rows = if packed && layout.groups() { rows - rows % ROWS } else { 0 };
        PackedMatrix { data, rows, packed_rows, layout }
    }

    pub fn row_bytes(&self) -> usize {
        self.layout.blocks * self.layout.block_bytes()
    }

    /// The packed group holding rows `ROWS·g .. ROWS·g + ROWS`.
    pub fn group(&self, g: usize) -> &'a [u8] {
        &self.data[g * self.layout.bytes()..][..self.layout.bytes()]
    }

    /// Row r ≥ `packed_rows`, in raw GGUF layout.
    pub fn raw_row(&self, r: usize) -> &'a [u8] {
        &self.data[r * self.row_bytes()..][..self.row_bytes()]
    }

    /// Block b of row r, written to `raw` as its GGUF bytes.
    pub fn block(&self, r: usize, b: usize, raw: &mut [u8]) {
        if r < self.packed_rows {
            return self.layout.block(self.group(r / ROWS), b, r % ROWS, raw);
        }
        let size = self.layout.block_bytes();
        raw[..size].copy_from_slice(&self.raw_row(r)[b * size..][..size]);
        from_kernel_order(self.layout.ty, &mut raw[..size]);
    }
}

/// The (offset, length) of each quant array of a K-quant block, which `pack_in_place` puts in
/// kernel order; none for the other types.
fn kernel_order_arrays(ty: GgmlType) -> &'static [(usize, usize)] {
    match ty {
        GgmlType::Q2_K => &[(16, 64)],
        GgmlType::Q3_K => &[(0, 32), (32, 64)],
        GgmlType::Q4_K => &[(16, 128)],
        GgmlType::Q5_K => &[(16, 32), (48, 128)],
        GgmlType::Q6_K => &[(0, 128), (128, 64)],
        _ => &[],
    }
}

/// Kernel order of the K-quants' quant arrays: they move in chunks of `.0` bytes, GGUF byte j of a
/// chunk (element j of its values) going to `.1(j)`. The SIMD128 kernels read pairs (k, k + 8)
/// like `Q8KActivation::qs`; the relaxed build's read `quant::relaxed_position`'s four-byte lanes
/// like `Q8KActivation::relaxed`.
const KERNEL_ORDER: (usize, fn(usize) -> usize) =
    if cfg!(feature = "relaxed-simd") { (32, relaxed_position) } else { (16, q8_k_position) };

/// A K-quant block's quant arrays from GGUF order to kernel order (every other type: unchanged).
pub fn to_kernel_order(ty: GgmlType, block: &mut [u8]) {
    let (chunk, position) = KERNEL_ORDER;
    for &(at, len) in kernel_order_arrays(ty) {
        for bytes in block[at..at + len].chunks_exact_mut(chunk) {
            let mut raw = [0u8; 32];
            raw[..chunk].copy_from_slice(bytes);
            for (j, &byte) in raw[..chunk].iter().enumerate() {
                bytes[position(j)] = byte;
            }
        }
    }
}

/// The inverse of `to_kernel_order`.
pub fn from_kernel_order(ty: GgmlType, block: &mut [u8]) {
    let (chunk, position) = KERNEL_ORDER;
    for &(at, len) in kernel_order_arrays(ty) {
        for bytes in block[at..at + len].chunks_exact_mut(chunk) {
            let mut ordered = [0u8; 32];
            ordered[..chunk].copy_from_slice(bytes);
            for (j, byte) in bytes.iter_mut().enumerate() {
                *byte = ordered[position(j)];
            }
        }
    }
}

/// Packs every whole group of `data` (raw rows) in place when its type `groups`, through
/// `scratch` (at least `layout.bytes()` long): one group at a time, never a second copy of the
/// matrix; puts a K-quant's blocks in kernel order. Returns false, leaving `data` raw, when some
/// block's d or m is inf or NaN: the group kernels widen them by the shorter steps that are exact
/// for finite halves only (and for the types that do not pack). A K-quant matrix always packs:
/// its kernels read only rows in kernel order.
pub fn pack_in_place(data: &mut [u8], layout: GroupLayout, scratch: &mut [u8]) -> bool {
    if !layout.groups() {
        for block in data.chunks_exact_mut(layout.block_bytes()) {
            to_kernel_order(layout.ty, block);
        }
        return layout.packs();
    }
    let finite = data.chunks_exact(layout.block_bytes()).all(|block| {
        layout.half_fields().iter().all(|&at| u16::from_le_bytes([block[at], block[at + 1]]) & 0x7fff <= MAX_FINITE)
    });
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

    const GROUPING: [GgmlType; 5] = [GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1];

    #[test]
    fn a_matrix_with_an_inf_or_nan_d_or_m_stays_raw() {
        for (ty, at) in [(GgmlType::Q4_0, 0), (GgmlType::Q4_1, 2), (GgmlType::Q5_1, 0), (GgmlType::Q5_0, 0)] {
            let layout = GroupLayout::new(ty, 2);
            for special in [0x7c00u16, 0xfe00] {
                let mut data = vec![0x11u8; 2 * layout.bytes()];
                data[layout.bytes() + ty.block_bytes() + at..][..2].copy_from_slice(&special.to_le_bytes());
                let raw = data.clone();
                assert!(!pack_in_place(&mut data, layout, &mut vec![0; layout.bytes()]), "{ty:?}");
                assert_eq!(data, raw);
            }
        }
    }

    #[test]
    fn plane_bits_cover_the_plane_once() {
        let mut seen = [0u8; QH_BYTES * ROWS];
        for lane in 0..ROWS {
            for e in 0..32 {
                let (byte, bit) = plane_position(lane, e);
                assert_eq!(seen[byte] >> bit & 1, 0, "lane {lane} element {e}");
                seen[byte] |= 1 << bit;
            }
        }
        assert!(seen.iter().all(|&b| b == 0xff));
    }

    #[test]
    fn packed_blocks_read_back_as_the_raw_ones() {
        for ty in GROUPING {
            let blocks = 5;
            let layout = GroupLayout::new(ty, blocks);
            let end = layout.quants(blocks - 1, ROWS - 1) + layout.quant_bytes;
            assert_eq!(end, layout.bytes(), "{ty:?}: the fields fill the group exactly");
            let row_bytes = layout.bytes() / ROWS;
            // Two whole groups and two raw rows.
            let mut raw: Vec<u8> = (0..row_bytes * 10).map(|i| (i * 7 + i / 13) as u8).collect();
            for block in raw.chunks_exact_mut(ty.block_bytes()) {
                for &at in layout.half_fields() {
                    block[at + 1] &= 0xbf; // a finite half: its exponent field is below 31
                }
            }
            let mut data = raw.clone();
            assert!(pack_in_place(&mut data, layout, &mut vec![0; layout.bytes()]));
            assert_ne!(data, raw);
            assert_eq!(data[8 * row_bytes..], raw[8 * row_bytes..]);
            let matrix = PackedMatrix::new(&data, 10, layout, true);
            assert_eq!(matrix.packed_rows, 8);
            for r in 0..10 {
                for b in 0..blocks {
                    let mut block = vec![0; ty.block_bytes()];
                    matrix.block(r, b, &mut block);
                    assert_eq!(block, &raw[r * row_bytes + b * ty.block_bytes()..][..ty.block_bytes()], "{ty:?} row {r} block {b}");
                }
            }
        }
    }

    #[test]
    fn k_quant_blocks_read_back_as_the_raw_ones() {
        for ty in [GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K] {
            let layout = GroupLayout::new(ty, 2);
            let raw: Vec<u8> = (0..ty.block_bytes() * 6).map(|i| (i * 7 + i / 13) as u8).collect();
            let mut data = raw.clone();
            assert!(pack_in_place(&mut data, layout, &mut []));
            assert_ne!(data, raw);
            let matrix = PackedMatrix::new(&data, 3, layout, true);
            for r in 0..3 {
                for b in 0..2 {
                    let mut block = vec![0; ty.block_bytes()];
                    matrix.block(r, b, &mut block);
                    let at = (2 * r + b) * ty.block_bytes();
                    assert_eq!(block, &raw[at..at + ty.block_bytes()], "{ty:?} row {r} block {b}");
                }
            }
        }
        // Kernel order pairs byte k with byte k + 8 of each 16; the relaxed build's puts bytes
        // k, k + 8, k + 16, k + 24 of each 32 side by side.
        let mut block = [0u8; 110];
        block.iter_mut().enumerate().for_each(|(i, b)| *b = i as u8);
        to_kernel_order(GgmlType::Q3_K, &mut block);
        let want: [u8; 20] = if cfg!(feature = "relaxed-simd") {
            [0, 8, 16, 24, 1, 9, 17, 25, 2, 10, 18, 26, 3, 11, 19, 27, 4, 12, 20, 28]
        } else {
            [0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15, 16, 24, 17, 25]
        };
        assert_eq!(&block[..20], &want);
    }
}
