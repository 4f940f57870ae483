//! ggml's quantized blocks as typed structs (`ggml-common.h`), each size asserted against the
//! type table, and their dequantization with ggml's f32 steps (`dequantize_row_*` in
//! `ggml-quants.c`), so an embedding row or a widened norm reads exactly what llama.cpp reads.
#![allow(non_camel_case_types)]

use crate::f16::{bf16_to_f32, f16_to_f32};
use crate::quant::{GgmlType, QK, QK_K};

/// A block struct that any bytes may be read as.
///
/// # Safety
/// Implementors are `#[repr(C)]` with only `[u8; N]` fields: alignment 1, no padding, every bit
/// pattern valid (`block!` declares them so).
pub unsafe trait Block: Sized {
    const TYPE: GgmlType;
    /// Writes the block's `TYPE.block_size()` values to `out`.
    fn dequantize(&self, out: &mut [f32]);
}

/// `bytes` read as whole blocks (a partial block at the end is left out).
pub fn blocks<B: Block>(bytes: &[u8]) -> &[B] {
    // SAFETY: B has alignment 1 and accepts any bytes (the `Block` contract); the length is
    // rounded down to whole blocks.
    unsafe { std::slice::from_raw_parts(bytes.as_ptr() as *const B, bytes.len() / std::mem::size_of::<B>()) }
}

/// A copy of a K-quant block read from a row in kernel order (`packed`), in GGUF order.
pub fn in_gguf_order<B: Block + Copy>(block: &B) -> B {
    let mut copy = *block;
    // SAFETY: B is plain bytes (the `Block` contract), so its bytes may be viewed and changed.
    let bytes = unsafe { std::slice::from_raw_parts_mut(&mut copy as *mut B as *mut u8, std::mem::size_of::<B>()) };
    crate::packed::from_kernel_order(B::TYPE, bytes);
    copy
}

macro_rules! block {
    ($(#[$doc:meta])* $name:ident: $ty:ident { $($(#[$field_doc:meta])* $field:ident: $n:expr),* $(,)? }) => {
        $(#[$doc])*
        #[repr(C)]
        #[derive(Clone, Copy)]
        pub struct $name {
            $($(#[$field_doc])* pub $field: [u8; $n]),*
        }
        const _: () = assert!(std::mem::size_of::<$name>() == GgmlType::$ty.block_bytes());
        const _: () = assert!(std::mem::align_of::<$name>() == 1);
    };
}

block!(
    /// value = d · (q - 8); byte j holds elements j (low nibble) and j + 16.
    BlockQ4_0: Q4_0 { d: 2, qs: 16 }
);
block!(
    /// value = d · q + m; nibbles as Q4_0's.
    BlockQ4_1: Q4_1 { d: 2, m: 2, qs: 16 }
);
block!(
    /// value = d · (q - 16), q = nibble | bit j of qh (a little-endian u32) << 4.
    BlockQ5_0: Q5_0 { d: 2, qh: 4, qs: 16 }
);
block!(
    /// value = d · q + m, q as Q5_0's.
    BlockQ5_1: Q5_1 { d: 2, m: 2, qh: 4, qs: 16 }
);
block!(
    /// value = d · q, q an i8.
    BlockQ8_0: Q8_0 { d: 2, qs: 32 }
);
block!(
    /// 16 sub-blocks of 16: value = d · (scale & 15) · q - dmin · (scale >> 4), q 2 bits.
    BlockQ2K: Q2_K {
        scales: 16,
        /// Byte 32h + l, bits 2j..2j+2: element 128h + 32j + l.
        qs: 64,
        d: 2,
        dmin: 2,
    }
);
block!(
    /// 16 sub-blocks of 16: value = d · (scale - 32) · (q - 4 · !high bit), q 2 bits, 6-bit scales.
    BlockQ3K: Q3_K {
        /// Bit i of byte l: the high bit of element 32i + l.
        hmask: 32,
        /// As Q2_K's.
        qs: 64,
        scales: 12,
        d: 2,
    }
);
block!(
    /// 8 sub-blocks of 32: value = d · scale · q - dmin · min, q 4 bits, 6-bit scales and mins.
    BlockQ4K: Q4_K {
        d: 2,
        dmin: 2,
        scales: 12,
        /// Byte 32h + l: element 64h + l (low nibble) and 64h + 32 + l.
        qs: 128,
    }
);
block!(
    /// Q4_K's layout plus a fifth bit: bit i of qh[l] is the high bit of element 32i + l.
    BlockQ5K: Q5_K { d: 2, dmin: 2, scales: 12, qh: 32, qs: 128 }
);
block!(
    /// 16 sub-blocks of 16: value = d · scale · (q - 32), q 6 bits, i8 scales. In each half of
    /// 128 (ql + 64h, qh + 32h), element l, l + 32, l + 64, l + 96 (l < 32) take the low nibble of
    /// ql[l], of ql[l + 32], the high nibble of ql[l], of ql[l + 32], and bits 0-1, 2-3, 4-5, 6-7 of qh[l].
    BlockQ6K: Q6_K { ql: 128, qh: 64, scales: 16, d: 2 }
);

#[inline(always)]
pub fn half(bits: [u8; 2]) -> f32 {
    f16_to_f32(u16::from_le_bytes(bits))
}

/// ggml's `get_scale_min_k4`: the 6-bit scale and min of each of Q4_K's / Q5_K's 8 sub-blocks.
#[inline(always)]
pub fn scales_and_mins(q: &[u8; 12]) -> ([u8; 8], [u8; 8]) {
    let (mut scales, mut mins) = ([0u8; 8], [0u8; 8]);
    for j in 0..4 {
        scales[j] = q[j] & 63;
        mins[j] = q[j + 4] & 63;
        scales[j + 4] = (q[j + 8] & 0xf) | ((q[j] >> 6) << 4);
        mins[j + 4] = (q[j + 8] >> 4) | ((q[j + 4] >> 6) << 4);
    }
    (scales, mins)
}

impl BlockQ3K {
    /// The 16 sub-block scales, 6 bits each, minus 32: the low 4 bits are the nibbles of bytes
    /// 0..8 (low nibbles for sub-blocks 0..8), the high 2 bits the bit pairs of bytes 8..12
    /// (pair j / 4 of byte 8 + j % 4). Branch-free, four sub-blocks per u32 as ggml unpacks them.
    #[inline(always)]
    pub fn scales(&self) -> [i8; 16] {
        let word = |i: usize| {
            u32::from_le_bytes([
                self.scales[4 * i],
                self.scales[4 * i + 1],
                self.scales[4 * i + 2],
                self.scales[4 * i + 3],
            ])
        };
        let (low, high, pairs) = (word(0), word(1), word(2));
        let nibbles = 0x0f0f_0f0f;
        let words = [
            (low & nibbles) | ((pairs & 0x0303_0303) << 4),
            (high & nibbles) | (((pairs >> 2) & 0x0303_0303) << 4),
            ((low >> 4) & nibbles) | (((pairs >> 4) & 0x0303_0303) << 4),
            ((high >> 4) & nibbles) | (((pairs >> 6) & 0x0303_0303) << 4),
        ];
        let mut out = [0i8; 16];
        for (chunk, word) in out.chunks_exact_mut(4).zip(words) {
            for (o, byte) in chunk.iter_mut().zip(word.to_le_bytes()) {
                *o = byte as i8 - 32;
            }
        }
        out
    }
}

unsafe impl Block for BlockQ4_0 {
    const TYPE: GgmlType = GgmlType::Q4_0;
    fn dequantize(&self, out: &mut [f32]) {
        let d = half(self.d);
        for (j, &q) in self.qs.iter().enumerate() {
            out[j] = ((q & 15) as i32 - 8) as f32 * d;
            out[j + QK / 2] = ((q >> 4) as i32 - 8) as f32 * d;
        }
    }
}

unsafe impl Block for BlockQ4_1 {
    const TYPE: GgmlType = GgmlType::Q4_1;
    fn dequantize(&self, out: &mut [f32]) {
        let (d, m) = (half(self.d), half(self.m));
        for (j, &q) in self.qs.iter().enumerate() {
            out[j] = (q & 15) as f32 * d + m;
            out[j + QK / 2] = (q >> 4) as f32 * d + m;
        }
    }
}

/// Element j of a Q5 block, 0..=31: its nibble and bit j of qh as bit 4.
#[inline(always)]
fn q5(qh: u32, qs: &[u8; 16], j: usize) -> i32 {
    let nibble = if j < 16 { qs[j] & 15 } else { qs[j - 16] >> 4 };
    (nibble as u32 | ((qh >> j) & 1) << 4) as i32
}

unsafe impl Block for BlockQ5_0 {
    const TYPE: GgmlType = GgmlType::Q5_0;
    fn dequantize(&self, out: &mut [f32]) {
        let (d, qh) = (half(self.d), u32::from_le_bytes(self.qh));
        for (j, o) in out[..QK].iter_mut().enumerate() {
            *o = (q5(qh, &self.qs, j) - 16) as f32 * d;
        }
    }
}

unsafe impl Block for BlockQ5_1 {
    const TYPE: GgmlType = GgmlType::Q5_1;
    fn dequantize(&self, out: &mut [f32]) {
        let (d, m, qh) = (half(self.d), half(self.m), u32::from_le_bytes(self.qh));
        for (j, o) in out[..QK].iter_mut().enumerate() {
            *o = q5(qh, &self.qs, j) as f32 * d + m;
        }
    }
}

unsafe impl Block for BlockQ8_0 {
    const TYPE: GgmlType = GgmlType::Q8_0;
    fn dequantize(&self, out: &mut [f32]) {
        let d = half(self.d);
        for (o, &q) in out.iter_mut().zip(&self.qs) {
            *o = q as i8 as f32 * d;
        }
    }
}

unsafe impl Block for BlockQ2K {
    const TYPE: GgmlType = GgmlType::Q2_K;
    fn dequantize(&self, out: &mut [f32]) {
        let (d, min) = (half(self.d), half(self.dmin));
        for (i, values) in out[..QK_K].chunks_exact_mut(16).enumerate() {
            // Sub-block i: half h = i / 8, bit pair j = (i / 2) % 4, bytes 16·(i % 2) of that half.
            let sc = self.scales[i];
            let (dl, ml) = (d * (sc & 15) as f32, min * (sc >> 4) as f32);
            let q = &self.qs[32 * (i / 8) + 16 * (i % 2)..][..16];
            let shift = 2 * ((i / 2) % 4);
            for (v, &byte) in values.iter_mut().zip(q) {
                *v = dl * ((byte >> shift) & 3) as f32 - ml;
            }
        }
    }
}

unsafe impl Block for BlockQ3K {
    const TYPE: GgmlType = GgmlType::Q3_K;
    fn dequantize(&self, out: &mut [f32]) {
        let (d, scales) = (half(self.d), self.scales());
        for (i, values) in out[..QK_K].chunks_exact_mut(16).enumerate() {
            let dl = d * scales[i] as f32;
            let (offset, pair) = (16 * (i % 2), (i / 2) % 4);
            let q = &self.qs[32 * (i / 8) + offset..][..16];
            let high = &self.hmask[offset..][..16];
            for ((v, &byte), &h) in values.iter_mut().zip(q).zip(high) {
                let low = ((byte >> (2 * pair)) & 3) as i32;
                *v = dl * (low - if h >> (i / 2) & 1 != 0 { 0 } else { 4 }) as f32;
            }
        }
    }
}

unsafe impl Block for BlockQ4K {
    const TYPE: GgmlType = GgmlType::Q4_K;
    fn dequantize(&self, out: &mut [f32]) {
        let (d, min) = (half(self.d), half(self.dmin));
        let (scales, mins) = scales_and_mins(&self.scales);
        for (s, values) in out[..QK_K].chunks_exact_mut(32).enumerate() {
            let (dl, ml) = (d * scales[s] as f32, min * mins[s] as f32);
            let (q, shift) = (&self.qs[32 * (s / 2)..][..32], 4 * (s % 2));
            for (v, &byte) in values.iter_mut().zip(q) {
                *v = dl * ((byte >> shift) & 15) as f32 - ml;
            }
        }
    }
}

unsafe impl Block for BlockQ5K {
    const TYPE: GgmlType = GgmlType::Q5_K;
    fn dequantize(&self, out: &mut [f32]) {
        let (d, min) = (half(self.d), half(self.dmin));
        let (scales, mins) = scales_and_mins(&self.scales);
        for (s, values) in out[..QK_K].chunks_exact_mut(32).enumerate() {
            let (dl, ml) = (d * scales[s] as f32, min * mins[s] as f32);
            let (q, shift) = (&self.qs[32 * (s / 2)..][..32], 4 * (s % 2));
            for ((v, &byte), &h) in values.iter_mut().zip(q).zip(&self.qh) {
                let high = if h >> s & 1 != 0 { 16 } else { 0 };
                *v = dl * (((byte >> shift) & 15) + high) as f32 - ml;
            }
        }
    }
}

/// Element 128h + 32k + l (k < 4, l < 32) of a Q6_K block: 0..=63.
#[inline(always)]
pub fn q6(block: &BlockQ6K, h: usize, k: usize, l: usize) -> u8 {
    let low = block.ql[64 * h + 32 * (k % 2) + l] >> (4 * (k / 2)) & 15;
    let high = (block.qh[32 * h + l] >> (2 * k)) & 3;
    low | (high << 4)
}

unsafe impl Block for BlockQ6K {
    const TYPE: GgmlType = GgmlType::Q6_K;
    fn dequantize(&self, out: &mut [f32]) {
        let d = half(self.d);
        for (i, values) in out[..QK_K].chunks_exact_mut(16).enumerate() {
            let scaled = d * self.scales[i] as i8 as f32;
            let (h, k, first) = (i / 8, (i / 2) % 4, 16 * (i % 2));
            for (l, v) in values.iter_mut().enumerate() {
                *v = scaled * (q6(self, h, k, first + l) as i32 - 32) as f32;
            }
        }
    }
}

/// One row of `ty` from its raw little-endian GGUF bytes (`ty.row_bytes(out.len())` long).
pub fn dequantize_row(ty: GgmlType, row: &[u8], out: &mut [f32]) {
    fn each<B: Block>(row: &[u8], out: &mut [f32]) {
        for (block, values) in blocks::<B>(row).iter().zip(out.chunks_exact_mut(B::TYPE.block_size())) {
            block.dequantize(values);
        }
    }
    fn words(row: &[u8], out: &mut [f32], size: usize, widen: impl Fn(&[u8]) -> f32) {
        row.chunks_exact(size).zip(out).for_each(|(bytes, o)| *o = widen(bytes));
    }
    match ty {
        GgmlType::F32 => words(row, out, 4, |b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        GgmlType::F16 => words(row, out, 2, |b| f16_to_f32(u16::from_le_bytes([b[0], b[1]]))),
        GgmlType::BF16 => words(row, out, 2, |b| bf16_to_f32(u16::from_le_bytes([b[0], b[1]]))),
        GgmlType::Q4_0 => each::<BlockQ4_0>(row, out),
        GgmlType::Q4_1 => each::<BlockQ4_1>(row, out),
        GgmlType::Q5_0 => each::<BlockQ5_0>(row, out),
        GgmlType::Q5_1 => each::<BlockQ5_1>(row, out),
        GgmlType::Q8_0 => each::<BlockQ8_0>(row, out),
        GgmlType::Q2_K => each::<BlockQ2K>(row, out),
        GgmlType::Q3_K => each::<BlockQ3K>(row, out),
        GgmlType::Q4_K => each::<BlockQ4K>(row, out),
        GgmlType::Q5_K => each::<BlockQ5K>(row, out),
        GgmlType::Q6_K => each::<BlockQ6K>(row, out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dequantizes_known_blocks() {
        let mut out = [0.0f32; 32];
        let mut q8 = vec![0x00, 0x38]; // d = 0.5
        q8.extend((0..32).map(|i| (i as i8 - 16) as u8));
        dequantize_row(GgmlType::Q8_0, &q8, &mut out);
        assert_eq!((out[0], out[31]), (-8.0, 7.5));

        let mut q4 = vec![0x00, 0x40]; // d = 2
        q4.extend((0..16).map(|j| (j as u8) | (((15 - j) as u8) << 4)));
        dequantize_row(GgmlType::Q4_0, &q4, &mut out);
        assert_eq!((out[0], out[15], out[16], out[31]), (-16.0, 14.0, 14.0, -16.0));

        // Q5_1: d = 2, m = -1; element 0 has qh bit 0 (16 + 0), element 31 bit 31 (16 + 15).
        let mut q5 = vec![0x00, 0x40, 0x00, 0xbc, 0x01, 0x00, 0x00, 0x80];
        q5.extend((0..16).map(|j| (j as u8) | (((15 - j) as u8) << 4)));
        dequantize_row(GgmlType::Q5_1, &q5, &mut out);
        assert_eq!((out[0], out[1], out[16], out[31]), (31.0, 1.0, 29.0, 31.0));
    }

    #[test]
    fn k_quant_scales_unpack_as_ggml_packs_them() {
        // Q4_K / Q5_K: sub-blocks 0..4 in the low 6 bits of bytes 0..4 (scales) and 4..8
        // (mins); 4..8 in the nibbles of bytes 8..12 with their top 2 bits above the first ones.
        let (scales, mins) = scales_and_mins(&[1 | 0xc0, 2, 3, 63, 4, 5, 6, 7 | 0x40, 0x9a, 0, 0, 0x0f]);
        assert_eq!(scales, [1, 2, 3, 63, 0x3a, 0, 0, 0x0f]);
        assert_eq!(mins, [4, 5, 6, 7, 9, 0, 0, 0x10]);
        // Q3_K: 4 low bits in nibbles of bytes 0..8, 2 high bits in bytes 8..12.
        let mut block = BlockQ3K { hmask: [0; 32], qs: [0; 64], scales: [0; 12], d: [0; 2] };
        block.scales[0] = 0x21; // j = 0 low 1, j = 8 low 2
        block.scales[8] = 0b1110_0100; // j = 0: 0, j = 4: 1, j = 8: 2, j = 12: 3 (high bits)
        let s = block.scales();
        assert_eq!((s[0], s[4], s[8], s[12], s[1]), (1 - 32, 16 - 32, 2 + 32 - 32, 48 - 32, -32));
    }
}
