"""ggml's tensor types to float32, vectorised with numpy: every type the engine runs.

Each block layout is a numpy structured dtype with ggml's field order, its size asserted against
ggml's block_* structs; each dequantizer repeats ggml's dequantize_row_* arithmetic in the same
order in float32 (products rounded before sums, as the C code does), so the values are bit for
bit ggml's (test_quants.py checks them against libggml-base.so). Types are keyed by ggml's name.
"""
from typing import Callable, Dict, Tuple

import numpy as np

QK_K = 256  # values per K-quant super-block
HALF = "<f2"

# -- block layouts (ggml-common.h) --------------------------------------------
BLOCKS: Dict[str, Tuple[int, np.dtype]] = {
    "Q4_0": (32, np.dtype([("d", HALF), ("qs", "u1", 16)])),
    "Q4_1": (32, np.dtype([("d", HALF), ("m", HALF), ("qs", "u1", 16)])),
    "Q5_0": (32, np.dtype([("d", HALF), ("qh", "<u4"), ("qs", "u1", 16)])),
    "Q5_1": (32, np.dtype([("d", HALF), ("m", HALF), ("qh", "<u4"), ("qs", "u1", 16)])),
    "Q8_0": (32, np.dtype([("d", HALF), ("qs", "i1", 32)])),
    "Q2_K": (QK_K, np.dtype([("scales", "u1", 16), ("qs", "u1", 64), ("d", HALF), ("dmin", HALF)])),
    "Q3_K": (QK_K, np.dtype([("hmask", "u1", 32), ("qs", "u1", 64), ("scales", "<u4", 3), ("d", HALF)])),
    "Q4_K": (QK_K, np.dtype([("d", HALF), ("dmin", HALF), ("scales", "u1", 12), ("qs", "u1", 128)])),
    "Q5_K": (QK_K, np.dtype([("d", HALF), ("dmin", HALF), ("scales", "u1", 12), ("qh", "u1", 32), ("qs", "u1", 128)])),
    "Q6_K": (QK_K, np.dtype([("ql", "u1", 128), ("qh", "u1", 64), ("scales", "i1", 16), ("d", HALF)])),
}
# sizeof(block_*) in ggml-common.h
for _name, _bytes in {"Q4_0": 18, "Q4_1": 20, "Q5_0": 22, "Q5_1": 24, "Q8_0": 34, "Q2_K": 84, "Q3_K": 110,
                      "Q4_K": 144, "Q5_K": 176, "Q6_K": 210}.items():
    assert BLOCKS[_name][1].itemsize == _bytes, f"block_{_name.lower()} must be {_bytes} bytes"

PLAIN = {"F32": np.dtype("<f4"), "F16": np.dtype("<f2"), "BF16": np.dtype("<u2")}


def _f32(half: np.ndarray) -> np.ndarray:
    """f16 fields widened (exact), shaped to broadcast over a block's values."""
    return half.astype(np.float32)[:, None]


def _nibbles(qs: np.ndarray) -> np.ndarray:
    """Low nibbles of the 16 bytes, then high nibbles: the order of the 32 values in a Q4/Q5 block."""
    return np.concatenate([qs & 0x0F, qs >> 4], axis=1)


def _bits(words: np.ndarray, count: int) -> np.ndarray:
    """Bit i of each uint32 for i < count, as uint8 (nb, count)."""
    return ((words[:, None] >> np.arange(count, dtype=np.uint32)) & 1).astype(np.uint8)


# -- 32-value blocks ------------------------------------------------------------
def _q4_0(b):
    return (_nibbles(b["qs"]).astype(np.int8) - 8).astype(np.float32) * _f32(b["d"])


def _q4_1(b):
    return _nibbles(b["qs"]).astype(np.float32) * _f32(b["d"]) + _f32(b["m"])


def _q5_values(b) -> np.ndarray:
    # Bit j of qh is the fifth bit of value j (j < 32), low nibbles first.
    return _nibbles(b["qs"]) | (_bits(b["qh"], 32) << 4)


def _q5_0(b):
    return (_q5_values(b).astype(np.int8) - 16).astype(np.float32) * _f32(b["d"])


def _q5_1(b):
    return _q5_values(b).astype(np.float32) * _f32(b["d"]) + _f32(b["m"])


def _q8_0(b):
    return b["qs"].astype(np.float32) * _f32(b["d"])


# -- K-quants: 256-value super-blocks -------------------------------------------------
def _k4_scales_mins(scales: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """get_scale_min_k4 for j = 0..7: eight 6-bit scales and mins packed in 12 bytes, as (nb, 8) each."""
    q = scales.astype(np.uint8)
    lo, mid, hi = q[:, 0:4], q[:, 4:8], q[:, 8:12]
    sc = np.concatenate([lo & 63, (hi & 0x0F) | ((lo >> 6) << 4)], axis=1)
    mn = np.concatenate([mid & 63, (hi >> 4) | ((mid >> 6) << 4)], axis=1)
    return sc, mn


def _q2_k(b):
    # Value 128n + 32j + 16h + l is bits 2j..2j+1 of qs[32n + 16h + l], with scale byte 8n + 2j + h:
    # low nibble a 4-bit scale of d, high nibble a 4-bit min of dmin.
    nb = len(b)
    qs = b["qs"].reshape(nb, 2, 1, 2, 16)
    shifts = (2 * np.arange(4, dtype=np.uint8)).reshape(1, 1, 4, 1, 1)
    q = ((qs >> shifts) & 3).astype(np.float32)
    sc = b["scales"].reshape(nb, 2, 4, 2, 1)
    d, dmin = b["d"].astype(np.float32), b["dmin"].astype(np.float32)
    dl = (sc & 0x0F).astype(np.float32) * d[:, None, None, None, None]
    ml = (sc >> 4).astype(np.float32) * dmin[:, None, None, None, None]
    return (dl * q - ml).reshape(nb, QK_K)


def _q3_k(b):
    nb = len(b)
    # Sixteen 6-bit scales: low 4 bits in the first 8 bytes, high 2 bits in the last 4 (ggml's kmask dance).
    aux = b["scales"]
    a0, a1, tmp = aux[:, 0], aux[:, 1], aux[:, 2]
    m1, m2 = np.uint32(0x03030303), np.uint32(0x0F0F0F0F)
    words = np.stack([
        (a0 & m2) | (((tmp >> 0) & m1) << 4),
        (a1 & m2) | (((tmp >> 2) & m1) << 4),
        ((a0 >> 4) & m2) | (((tmp >> 4) & m1) << 4),
        ((a1 >> 4) & m2) | (((tmp >> 6) & m1) << 4),
    ], axis=1).astype("<u4")
    scales = (words.view(np.int8).astype(np.int32) - 32).reshape(nb, 2, 4, 2, 1)
    # Value 128n + 32j + 16h + l: bits 2j..2j+1 of qs[32n + 16h + l], minus 4 unless bit 4n + j of
    # hmask[16h + l] is set.
    qs = b["qs"].reshape(nb, 2, 1, 2, 16)
    shifts = (2 * np.arange(4, dtype=np.uint8)).reshape(1, 1, 4, 1, 1)
    low = ((qs >> shifts) & 3).astype(np.int8)
    hm = b["hmask"].reshape(nb, 1, 1, 2, 16)
    hbit = (hm >> np.arange(8, dtype=np.uint8).reshape(1, 2, 4, 1, 1)) & 1
    q = (low - 4 * (1 - hbit).astype(np.int8)).astype(np.float32)
    dl = b["d"].astype(np.float32)[:, None, None, None, None] * scales.astype(np.float32)
    return (dl * q).reshape(nb, QK_K)


def _k_sub_blocks(b, high_bits: np.ndarray = None) -> np.ndarray:
    """Q4_K / Q5_K: value 64j + 32h + l is nibble h of qs[32j + l] (plus 16 × its high bit), in
    sub-block 2j + h with scale d·sc and min dmin·m."""
    nb = len(b)
    qs = b["qs"].reshape(nb, 4, 1, 32)
    q = np.concatenate([qs & 0x0F, qs >> 4], axis=2)  # (nb, 4, 2, 32)
    if high_bits is not None:
        q = q | (high_bits << 4)
    sc, mn = _k4_scales_mins(b["scales"])
    d, dmin = b["d"].astype(np.float32)[:, None], b["dmin"].astype(np.float32)[:, None]
    d_sub = (sc.astype(np.float32) * d).reshape(nb, 4, 2, 1)
    m_sub = (mn.astype(np.float32) * dmin).reshape(nb, 4, 2, 1)
    return (d_sub * q.astype(np.float32) - m_sub).reshape(nb, QK_K)


def _q4_k(b):
    return _k_sub_blocks(b)


def _q5_k(b):
    # The fifth bit of value 64j + 32h + l is bit 2j + h of qh[l].
    nb = len(b)
    qh = b["qh"].reshape(nb, 1, 1, 32)
    shifts = np.arange(8, dtype=np.uint8).reshape(1, 4, 2, 1)
    return _k_sub_blocks(b, (qh >> shifts) & 1)


def _q6_k(b):
    # Value 128n + 32k + l: low 4 bits from ql[64n + 32(k % 2) + l] (nibble k // 2), high 2 bits
    # from bits 2k..2k+1 of qh[32n + l]; scale scales[8n + 2k + l // 16]; minus 32.
    nb = len(b)
    ql = b["ql"].reshape(nb, 2, 1, 2, 32)
    ql = np.concatenate([ql & 0x0F, ql >> 4], axis=2).reshape(nb, 2, 4, 32)  # k = 2·nibble + half
    qh = b["qh"].reshape(nb, 2, 1, 32)
    hi = (qh >> (2 * np.arange(4, dtype=np.uint8)).reshape(1, 1, 4, 1)) & 3
    q = ((ql | (hi << 4)).astype(np.int8) - 32).astype(np.float32)
    sc = np.repeat(b["scales"].reshape(nb, 2, 4, 2), 16, axis=3).astype(np.float32)
    return (b["d"].astype(np.float32)[:, None, None, None] * sc * q).reshape(nb, QK_K)


DEQUANTIZERS: Dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "Q4_0": _q4_0, "Q4_1": _q4_1, "Q5_0": _q5_0, "Q5_1": _q5_1, "Q8_0": _q8_0,
    "Q2_K": _q2_k, "Q3_K": _q3_k, "Q4_K": _q4_k, "Q5_K": _q5_k, "Q6_K": _q6_k,
}
TYPES = tuple(PLAIN) + tuple(DEQUANTIZERS)
CHUNK_BLOCKS = 1 << 15  # bounds the temporaries of a large tensor (a 262k-row embedding) to a few MB each


class UnsupportedType(ValueError):
    """A tensor type this reader cannot turn into values."""


def dequantize(raw, type_name: str) -> np.ndarray:
    """Bytes of a tensor of ggml type `type_name` (e.g. "Q4_K") -> float32 values, flat."""
    buf = np.frombuffer(raw, dtype=np.uint8)
    if type_name in PLAIN:
        values = buf.view(PLAIN[type_name])
        if type_name == "BF16":  # the top half of an f32
            return (values.astype(np.uint32) << 16).view(np.float32)
        return values.astype(np.float32)
    if type_name not in DEQUANTIZERS:
        raise UnsupportedType(f"cannot read {type_name} values (this reader reads {', '.join(TYPES)})")
    block_values, layout = BLOCKS[type_name]
    if len(buf) % layout.itemsize:
        raise UnsupportedType(f"{len(buf)} bytes are not whole {type_name} blocks of {layout.itemsize} bytes")
    blocks = buf.view(layout)
    out = np.empty((len(blocks), block_values), dtype=np.float32)
    for start in range(0, len(blocks), CHUNK_BLOCKS):
        out[start:start + CHUNK_BLOCKS] = DEQUANTIZERS[type_name](blocks[start:start + CHUNK_BLOCKS])
    return out.reshape(-1)
