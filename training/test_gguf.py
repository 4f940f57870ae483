"""GGUF reader/writer round trip, hand-checked quantizer blocks, malformed input."""
import struct
import unittest

import numpy as np

from . import gguf
from .gguf import Typed


def _f16_bytes(x: float) -> bytes:
    return np.float16(x).tobytes()


class RoundTrip(unittest.TestCase):
    def test_metadata_and_tensors_survive(self):
        w = gguf.GGUFWriter()
        typed = {
            "u8": Typed(gguf.T_U8, 200), "i8": Typed(gguf.T_I8, -100), "u16": Typed(gguf.T_U16, 60000),
            "i16": Typed(gguf.T_I16, -30000), "u32": 4_000_000_000, "i32": Typed(gguf.T_I32, -5),
            "f32": Typed(gguf.T_F32, 0.5), "bool": True, "str": "h\u00e9llo", "u64": Typed(gguf.T_U64, 2 ** 40),
            "i64": -(2 ** 40), "f64": Typed(gguf.T_F64, 1e-300),
            "arr_str": Typed(gguf.T_ARRAY, ["a", "", "\u2581b"], gguf.T_STRING),
            "arr_f32": Typed(gguf.T_ARRAY, [1.5, -2.0], gguf.T_F32),
            "arr_i32": Typed(gguf.T_ARRAY, [1, -2, 3], gguf.T_I32),
            "arr_bool": Typed(gguf.T_ARRAY, [True, False], gguf.T_BOOL),
            "arr_arr": Typed(gguf.T_ARRAY, [[1, 2], [3]], gguf.T_ARRAY),
        }
        for key, value in typed.items():
            w.add(key, value)
        rng = np.random.default_rng(1)
        mats = {t: rng.standard_normal((3, 64)).astype(np.float32) for t in (gguf.F32, gguf.F16, gguf.Q8_0, gguf.Q4_0)}
        for t, m in mats.items():
            w.add_tensor(f"t{t}", m, t)
        w.add_tensor("vec", np.arange(5, dtype=np.float32), gguf.F32)  # odd size: tests padding
        f = gguf.GGUFFile(w.to_bytes())

        for key, value in typed.items():
            self.assertEqual(f.metadata[key], value.value if isinstance(value, Typed) else value, key)
        self.assertEqual(f.metadata_types["u8"], gguf.T_U8)
        self.assertEqual(f.tensors["t0"].dims, (64, 3))
        np.testing.assert_array_equal(f.tensor("t0"), mats[gguf.F32])
        np.testing.assert_array_equal(f.tensor("t1"), mats[gguf.F16].astype(np.float16).astype(np.float32))
        for t, tolerance in ((gguf.Q8_0, 0.02), (gguf.Q4_0, 0.35)):
            got = f.tensor(f"t{t}")
            self.assertEqual(got.shape, (3, 64))
            self.assertLess(np.abs(got - mats[t]).max(), tolerance)
            # Re-quantizing dequantized values is a fixed point of the reference quantizer.
            self.assertEqual(gguf.quantize(got, t), f.raw(f"t{t}"))
        np.testing.assert_array_equal(f.tensor("vec"), np.arange(5))
        for info in f.tensors.values():
            self.assertEqual(info.offset % 32, 0)


class Quantizers(unittest.TestCase):
    def test_q8_0_rounds_half_away_from_zero(self):
        x = np.zeros(32, dtype=np.float32)
        x[:6] = [127, 2.5, -2.5, 0.5, -0.5, 1.5]  # amax 127 -> d = 1 exactly
        expected = _f16_bytes(1.0) + bytes(np.array([127, 3, -3, 1, -1, 2] + [0] * 26, dtype=np.int8))
        self.assertEqual(gguf.quantize(x, gguf.Q8_0), expected)

    def test_q8_0_all_zero_block(self):
        self.assertEqual(gguf.quantize(np.zeros(32), gguf.Q8_0), bytes(34))

    def test_q4_0_negative_peak(self):
        x = np.zeros(32, dtype=np.float32)
        x[:6] = [-8, 7, 0, 0.5, -0.5, 7.4]  # peak -8 -> d = 1; q = min(15, trunc(x + 8.5))
        x[16] = 3.2  # shares byte 0 with element 0 (high nibble)
        q = [0, 15, 8, 9, 8, 15] + [8] * 10
        high = [11] + [8] * 15
        expected = _f16_bytes(1.0) + bytes(lo | (hi << 4) for lo, hi in zip(q, high))
        raw = gguf.quantize(x, gguf.Q4_0)
        self.assertEqual(raw, expected)
        deq = gguf.dequantize(raw, gguf.Q4_0)
        np.testing.assert_array_equal(deq[:6], [-8, 7, 0, 1, 0, 7])
        self.assertEqual(deq[16], 3)

    def test_q4_0_positive_peak_gives_negative_scale(self):
        x = np.zeros(32, dtype=np.float32)
        x[:3] = [4, 1, -4]  # first of the equal magnitudes wins: peak +4 -> d = -0.5
        raw = gguf.quantize(x, gguf.Q4_0)
        self.assertEqual(raw[:2], _f16_bytes(-0.5))
        # 4 * -2 + 8.5 = 0.5 -> 0; 1 * -2 + 8.5 = 6.5 -> 6; -4 * -2 + 8.5 = 16.5 -> clamp 15
        self.assertEqual(list(raw[2:5]), [0 | 8 << 4, 6 | 8 << 4, 15 | 8 << 4])
        np.testing.assert_array_equal(gguf.dequantize(raw, gguf.Q4_0)[:3], [4, 1, -3.5])

    def test_q8_0_dequantize_layout(self):
        raw = _f16_bytes(0.25) + bytes(np.arange(-16, 16, dtype=np.int8))
        np.testing.assert_array_equal(gguf.dequantize(raw, gguf.Q8_0), np.arange(-16, 16) * 0.25)

    def test_block_size_is_enforced(self):
        with self.assertRaises(gguf.GGUFError):
            gguf.GGUFWriter().add_tensor("x", np.zeros((2, 48)), gguf.Q8_0)


class Malformed(unittest.TestCase):
    def _valid(self) -> bytes:
        w = gguf.GGUFWriter()
        w.add("general.architecture", "llama")
        w.add_tensor("x", np.ones((2, 32)), gguf.Q8_0)
        return w.to_bytes()

    def test_bad_magic(self):
        with self.assertRaisesRegex(gguf.GGUFError, "bad magic"):
            gguf.GGUFFile(b"GGML" + self._valid()[4:])

    def test_truncated(self):
        data = self._valid()
        info = gguf.GGUFFile(data).tensors["x"]
        for cut in (3, 20, 60, info.offset + info.n_bytes - 1):
            with self.assertRaises(gguf.GGUFError, msg=f"cut at {cut}"):
                gguf.GGUFFile(data[:cut])

    def test_absurd_counts_fail_fast(self):
        data = bytearray(self._valid())
        struct.pack_into("<Q", data, 16, 2 ** 60)  # kv count
        with self.assertRaisesRegex(gguf.GGUFError, "exceed"):
            gguf.GGUFFile(bytes(data))

    def test_unknown_tensor_type(self):
        data = self._valid()
        # the tensor's type id follows its name, n_dims and two dims
        at = data.index(b"x\x02\x00\x00\x00") + 1 + 4 + 16
        bad = data[:at] + struct.pack("<I", 99) + data[at + 4:]
        with self.assertRaisesRegex(gguf.GGUFError, "unknown ggml type 99"):
            gguf.GGUFFile(bad)

    def test_known_types_parse_and_refuse_values_by_name(self):
        data = self._valid()
        at = data.index(b"x\x02\x00\x00\x00") + 1 + 4 + 16
        # IQ4_NL: 2 rows of one 18-byte block each, within the Q8_0 tensor's 68 bytes.
        f = gguf.GGUFFile(data[:at] + struct.pack("<I", 20) + data[at + 4:])
        self.assertEqual(f.tensors["x"].n_bytes, 36)
        with self.assertRaisesRegex(gguf.GGUFError, "cannot read IQ4_NL values"):
            f.tensor("x")

    def test_missing_file(self):
        with self.assertRaisesRegex(gguf.GGUFError, "not found"):
            gguf.GGUFFile.open("/nonexistent/model.gguf")


class Hash(unittest.TestCase):
    def test_fnv1a64_known_values(self):
        self.assertEqual(gguf.fnv1a64_hex(b""), "cbf29ce484222325")
        self.assertEqual(gguf.fnv1a64_hex(b"a"), "af63dc4c8601ec8c")


if __name__ == "__main__":
    unittest.main()
