"""quants.py against ggml itself: libggml-base.so (node-llama-cpp's build) quantizes random rows with
ggml_quantize_chunk and dequantizes them with its own dequantize_row_*; ours must give the same bits.
Random block bytes (finite f16 scales, every other bit random) reach the bit patterns a quantizer
rarely writes. Skipped, saying so, where tools/peers is not installed."""
import ctypes
import os
import time
import unittest

import numpy as np

from . import gguf, quants

LIB_DIR = os.path.join(os.path.dirname(__file__), "..", "tools", "peers", "node_modules", "@node-llama-cpp",
                       "linux-x64", "bins", "linux-x64")
LIB = os.path.join(LIB_DIR, "libggml-base.so")
TYPE_IDS = {name: tid for tid, (name, _, _) in gguf.GGML_TYPES.items()}
# ggml's row converters for the plain types; the quantized ones are dequantize_row_q4_0, …, dequantize_row_q6_K.
PLAIN_ROWS = {"F32": None, "F16": "ggml_fp16_to_fp32_row", "BF16": "ggml_bf16_to_fp32_row"}
# Byte offsets of a block's f16 scales (random bytes there could be NaN/inf, whose NaN bits C and numpy
# may print differently): every other byte stays random.
HALF_FIELDS = {name: [layout.fields[f][1] for f in ("d", "m", "dmin") if f in layout.fields]
               for name, (_, layout) in quants.BLOCKS.items()}


def load_ggml():
    if not os.path.exists(LIB):
        return None
    lib = ctypes.CDLL(LIB)
    lib.ggml_quantize_chunk.restype = ctypes.c_size_t
    lib.ggml_quantize_chunk.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64,
                                        ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p]
    for fn in ("ggml_type_size", "ggml_blck_size"):
        getattr(lib, fn).restype = ctypes.c_size_t
        getattr(lib, fn).argtypes = [ctypes.c_int]
    return lib


GGML = load_ggml()


def ggml_dequantize(name: str, raw: bytes, n: int) -> np.ndarray:
    out = np.empty(n, dtype=np.float32)
    fn = PLAIN_ROWS[name] if name in PLAIN_ROWS else "dequantize_row_" + name.lower().replace("_k", "_K")
    if fn is None:
        return np.frombuffer(raw, dtype="<f4").copy()
    getattr(GGML, fn)(ctypes.c_char_p(raw), out.ctypes.data_as(ctypes.c_void_p), ctypes.c_int64(n))
    return out


def ggml_quantize(name: str, values: np.ndarray, row: int) -> bytes:
    values = np.ascontiguousarray(values, dtype=np.float32)
    tid = TYPE_IDS[name]
    nrows = values.size // row
    dst = ctypes.create_string_buffer(nrows * row // GGML.ggml_blck_size(tid) * GGML.ggml_type_size(tid))
    written = GGML.ggml_quantize_chunk(tid, values.ctypes.data_as(ctypes.c_void_p), dst, 0, nrows, row, None)
    return dst.raw[:written]


def random_rows(rng, rows: int, row: int) -> np.ndarray:
    """Rows at scales from 1e-3 to 1e2, some with outliers, some all zero: the quantizers' branches."""
    x = rng.standard_normal((rows, row)).astype(np.float32) * np.float32(10.0) ** rng.uniform(-3, 2, (rows, 1))
    x[rng.random((rows, row)) < 0.002] *= 50
    x[::7] = 0
    x[3::11] = np.abs(x[3::11])
    return x


def assert_same_bits(test, ours: np.ndarray, theirs: np.ndarray, what: str) -> None:
    mismatch = np.flatnonzero(ours.view(np.uint32) != theirs.view(np.uint32))
    test.assertEqual(len(mismatch), 0, f"{what}: {len(mismatch)} values differ, first at {mismatch[:5]}: "
                                       f"ours {ours[mismatch[:5]]}, ggml {theirs[mismatch[:5]]}")


@unittest.skipIf(GGML is None, f"ggml library not found at {LIB} (npm install --prefix tools/peers)")
class AgainstGgml(unittest.TestCase):
    def test_block_layouts_are_ggml_s(self):
        for name in quants.TYPES:
            block = quants.BLOCKS[name][0] if name in quants.BLOCKS else 1
            size = quants.BLOCKS[name][1].itemsize if name in quants.BLOCKS else quants.PLAIN[name].itemsize
            tid = TYPE_IDS[name]
            self.assertEqual((GGML.ggml_blck_size(tid), GGML.ggml_type_size(tid)), (block, size), name)
            self.assertEqual(gguf.GGML_TYPES[tid][1:], (block, size), name)

    def test_quantized_rows_dequantize_to_ggml_s_bits(self):
        rng = np.random.default_rng(0)
        row = 512
        values = random_rows(rng, 64, row)
        for name in quants.TYPES:
            with self.subTest(type=name):
                raw = ggml_quantize(name, values, row)
                assert_same_bits(self, gguf.dequantize(raw, TYPE_IDS[name]), ggml_dequantize(name, raw, values.size),
                                 f"{name} from ggml_quantize_chunk")

    def test_random_blocks_dequantize_to_ggml_s_bits(self):
        rng = np.random.default_rng(1)
        for name, (block_values, layout) in quants.BLOCKS.items():
            with self.subTest(type=name):
                blocks = rng.integers(0, 256, (4096, layout.itemsize), dtype=np.uint8)
                for offset in HALF_FIELDS[name]:
                    halves = rng.standard_normal(len(blocks)).astype(np.float16) * np.float16(0.01)
                    blocks[:, offset:offset + 2] = halves.view(np.uint8).reshape(-1, 2)
                raw = blocks.tobytes()
                ours = quants.dequantize(raw, name)
                assert_same_bits(self, ours, ggml_dequantize(name, raw, len(blocks) * block_values),
                                 f"{name} random blocks")

    def test_bf16_and_f16_special_values(self):
        bits = np.array([0x0000, 0x8000, 0x0001, 0x7F80, 0xFF80, 0x3F80, 0x7BFF, 0x03FF], dtype="<u2")
        for name in ("BF16", "F16"):
            raw = bits.tobytes()
            assert_same_bits(self, quants.dequantize(raw, name), ggml_dequantize(name, raw, len(bits)), name)


class Behaviour(unittest.TestCase):
    def test_large_tensors_dequantize_in_seconds(self):
        # A 135M-parameter Q4_K_M file is mostly Q4_K/Q6_K: 16M values of each well within a second or two.
        rng = np.random.default_rng(2)
        for name in ("Q4_K", "Q6_K", "Q5_0"):
            _, layout = quants.BLOCKS[name]
            n_blocks = (1 << 24) // quants.BLOCKS[name][0]
            raw = rng.integers(0, 256, (n_blocks, layout.itemsize), dtype=np.uint8)
            for offset in HALF_FIELDS[name]:
                raw[:, offset:offset + 2] = 0x1C  # finite scales
            started = time.perf_counter()
            values = quants.dequantize(raw.tobytes(), name)
            elapsed = time.perf_counter() - started
            self.assertEqual(values.shape, (1 << 24,))
            self.assertLess(elapsed, 10, f"{name}: {elapsed:.1f} s for 16M values")

    def test_refuses_types_it_cannot_read_by_name(self):
        with self.assertRaisesRegex(gguf.GGUFError, "cannot read IQ4_XS values"):
            gguf.dequantize(bytes(136), TYPE_IDS["IQ4_XS"])
        with self.assertRaisesRegex(gguf.GGUFError, "not whole Q4_K blocks"):
            gguf.dequantize(bytes(100), TYPE_IDS["Q4_K"])


if __name__ == "__main__":
    unittest.main()
