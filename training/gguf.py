"""GGUF v3 reader and writer (metadata, tensors).

The type table mirrors sdk/src/contract/ggml-types.ts (test/contract.test.ts checks it).
The reader gives float32 values of every type the engine runs (quants.py); the writer
stores F32/F16/Q8_0/Q4_0, its quantizers reproducing ggml's reference
quantize_row_q8_0 / quantize_row_q4_0 bit for bit.
"""
import struct
from dataclasses import dataclass
from typing import Any, Dict, List, Tuple

import numpy as np

from . import quants

MAGIC = b"GGUF"
VERSION = 3
DEFAULT_ALIGNMENT = 32
QK = 32  # elements per Q8_0 / Q4_0 block

F32, F16, Q4_0, Q8_0 = 0, 1, 2, 8
# Every ggml type a file may hold: id -> (name, elements per block, bytes per block), so any
# file can be parsed; values are read for the engine's types (quants.TYPES) and written for
# F32, F16, Q4_0 and Q8_0.
GGML_TYPES = {
    0: ("F32", 1, 4), 1: ("F16", 1, 2), 2: ("Q4_0", 32, 18), 3: ("Q4_1", 32, 20),
    6: ("Q5_0", 32, 22), 7: ("Q5_1", 32, 24), 8: ("Q8_0", 32, 34), 9: ("Q8_1", 32, 36),
    10: ("Q2_K", 256, 84), 11: ("Q3_K", 256, 110), 12: ("Q4_K", 256, 144), 13: ("Q5_K", 256, 176),
    14: ("Q6_K", 256, 210), 15: ("Q8_K", 256, 292), 16: ("IQ2_XXS", 256, 66), 17: ("IQ2_XS", 256, 74),
    18: ("IQ3_XXS", 256, 98), 19: ("IQ1_S", 256, 50), 20: ("IQ4_NL", 32, 18), 21: ("IQ3_S", 256, 110),
    22: ("IQ2_S", 256, 82), 23: ("IQ4_XS", 256, 136), 24: ("I8", 1, 1), 25: ("I16", 1, 2),
    26: ("I32", 1, 4), 27: ("I64", 1, 8), 28: ("F64", 1, 8), 29: ("IQ1_M", 256, 56),
    30: ("BF16", 1, 2), 34: ("TQ1_0", 256, 54), 35: ("TQ2_0", 256, 66), 39: ("MXFP4", 32, 17),
    40: ("NVFP4", 64, 36), 41: ("Q1_0", 128, 18), 42: ("Q2_0", 64, 18),
}

# Metadata value types.
(T_U8, T_I8, T_U16, T_I16, T_U32, T_I32, T_F32, T_BOOL, T_STRING, T_ARRAY,
 T_U64, T_I64, T_F64) = range(13)
_SCALAR_FORMATS = {T_U8: "<B", T_I8: "<b", T_U16: "<H", T_I16: "<h", T_U32: "<I",
                   T_I32: "<i", T_F32: "<f", T_BOOL: "<?", T_U64: "<Q", T_I64: "<q",
                   T_F64: "<d"}
_NUMPY_DTYPES = {T_U8: "<u1", T_I8: "<i1", T_U16: "<u2", T_I16: "<i2", T_U32: "<u4",
                 T_I32: "<i4", T_F32: "<f4", T_U64: "<u8", T_I64: "<i8", T_F64: "<f8"}


class GGUFError(ValueError):
    """The bytes are not a GGUF file this module understands."""


class Typed:
    """A metadata value with an explicit GGUF type (e.g. Typed(T_F32, 1e-5))."""

    def __init__(self, vtype: int, value: Any, elem_type: int = None):
        self.vtype, self.value, self.elem_type = vtype, value, elem_type


@dataclass
class TensorInfo:
    name: str
    dims: Tuple[int, ...]  # GGUF order: dims[0] (ne0) is contiguous
    ggml_type: int
    offset: int  # absolute byte offset in the file

    @property
    def n_elements(self) -> int:
        return int(np.prod(self.dims, dtype=np.int64)) if self.dims else 1

    @property
    def n_bytes(self) -> int:
        _, block, size = GGML_TYPES[self.ggml_type]
        return self.n_elements // block * size


class GGUFFile:
    """A parsed GGUF file. `tensor(name)` dequantizes to float32 of shape dims[::-1]."""

    def __init__(self, data: bytes, path: str = "<bytes>"):
        self.path = path
        self.data = memoryview(data)
        self.metadata: Dict[str, Any] = {}
        self.metadata_types: Dict[str, int] = {}
        self.tensors: Dict[str, TensorInfo] = {}
        self._parse()

    @classmethod
    def open(cls, path: str) -> "GGUFFile":
        try:
            with open(path, "rb") as f:
                return cls(f.read(), path)
        except FileNotFoundError:
            raise GGUFError(f"GGUF file not found: {path}") from None

    # -- parsing -------------------------------------------------------
    def _take(self, n: int) -> memoryview:
        if n < 0 or self._pos + n > len(self.data):
            raise GGUFError(f"{self.path}: truncated at byte {self._pos} (needs {n} more bytes)")
        chunk = self.data[self._pos:self._pos + n]
        self._pos += n
        return chunk

    def _scalar(self, vtype: int):
        fmt = _SCALAR_FORMATS[vtype]
        return struct.unpack(fmt, self._take(struct.calcsize(fmt)))[0]

    def _string(self) -> str:
        n = self._scalar(T_U64)
        try:
            return bytes(self._take(n)).decode("utf-8")
        except UnicodeDecodeError:
            raise GGUFError(f"{self.path}: string at byte {self._pos - n} is not UTF-8") from None

    def _value(self, vtype: int):
        if vtype in _SCALAR_FORMATS:
            return self._scalar(vtype)
        if vtype == T_STRING:
            return self._string()
        if vtype == T_ARRAY:
            elem_type, count = self._scalar(T_U32), self._scalar(T_U64)
            if elem_type in _NUMPY_DTYPES:
                dtype = np.dtype(_NUMPY_DTYPES[elem_type])
                raw = self._take(count * dtype.itemsize)
                return np.frombuffer(raw, dtype=dtype).tolist()
            if count > len(self.data):  # each element needs at least one byte
                raise GGUFError(f"{self.path}: array of {count} elements cannot fit the file")
            return [self._value(elem_type) for _ in range(count)]
        raise GGUFError(f"{self.path}: unknown metadata value type {vtype}")

    def _parse(self) -> None:
        self._pos = 0
        if bytes(self._take(4)) != MAGIC:
            raise GGUFError(f"{self.path}: not a GGUF file (bad magic)")
        version = self._scalar(T_U32)
        if version not in (2, 3):
            raise GGUFError(f"{self.path}: GGUF version {version} is not supported (need 2 or 3)")
        n_tensors, n_kv = self._scalar(T_U64), self._scalar(T_U64)
        if n_tensors > len(self.data) or n_kv > len(self.data):
            raise GGUFError(f"{self.path}: header counts ({n_tensors} tensors, {n_kv} keys) exceed the file size")
        for _ in range(n_kv):
            key = self._string()
            vtype = self._scalar(T_U32)
            self.metadata_types[key] = vtype
            self.metadata[key] = self._value(vtype)
        infos = []
        for _ in range(n_tensors):
            name = self._string()
            n_dims = self._scalar(T_U32)
            if n_dims > 4:
                raise GGUFError(f"{self.path}: tensor {name} has {n_dims} dims (max 4)")
            dims = tuple(self._scalar(T_U64) for _ in range(n_dims))
            ggml_type, offset = self._scalar(T_U32), self._scalar(T_U64)
            if ggml_type not in GGML_TYPES:
                raise GGUFError(f"{self.path}: tensor {name} has unknown ggml type {ggml_type}")
            infos.append((name, dims, ggml_type, offset))
        alignment = self.metadata.get("general.alignment", DEFAULT_ALIGNMENT)
        if not isinstance(alignment, int) or alignment <= 0 or alignment & (alignment - 1):
            raise GGUFError(f"{self.path}: general.alignment {alignment!r} is not a power of two")
        data_start = _align(self._pos, alignment)
        for name, dims, ggml_type, offset in infos:
            info = TensorInfo(name, dims, ggml_type, data_start + offset)
            if dims and dims[0] % GGML_TYPES[ggml_type][1]:
                raise GGUFError(f"{self.path}: tensor {name} row length {dims[0]} is not a multiple of the block size")
            if info.offset + info.n_bytes > len(self.data):
                raise GGUFError(f"{self.path}: tensor {name} data runs past the end of the file")
            if name in self.tensors:
                raise GGUFError(f"{self.path}: duplicate tensor {name}")
            self.tensors[name] = info

    # -- access --------------------------------------------------------
    def raw(self, name: str) -> bytes:
        info = self._info(name)
        return bytes(self.data[info.offset:info.offset + info.n_bytes])

    def tensor(self, name: str) -> np.ndarray:
        info = self._info(name)
        values = dequantize(self.raw(name), info.ggml_type)
        return values.reshape(tuple(reversed(info.dims)))

    def _info(self, name: str) -> TensorInfo:
        if name not in self.tensors:
            raise GGUFError(f"{self.path}: no tensor named {name}")
        return self.tensors[name]

    def require(self, key: str):
        if key not in self.metadata:
            raise GGUFError(f"{self.path}: missing metadata key {key}")
        return self.metadata[key]


def _align(n: int, alignment: int) -> int:
    return (n + alignment - 1) // alignment * alignment


# -- quantization -------------------------------------------------------
def type_name(ggml_type: int) -> str:
    return GGML_TYPES.get(ggml_type, (f"type {ggml_type}",))[0]


def dequantize(raw: bytes, ggml_type: int) -> np.ndarray:
    """Tensor bytes -> flat float32 values, for every type the engine runs (quants.py)."""
    try:
        return quants.dequantize(raw, type_name(ggml_type))
    except quants.UnsupportedType as e:
        raise GGUFError(str(e)) from None


def quantize(values: np.ndarray, ggml_type: int) -> bytes:
    x = np.ascontiguousarray(values, dtype=np.float32).reshape(-1)
    if ggml_type == F32:
        return x.astype("<f4").tobytes()
    if ggml_type == F16:
        return x.astype("<f2").tobytes()
    if x.size % QK:
        raise GGUFError(f"{x.size} values cannot be split into blocks of {QK}")
    blocks = x.reshape(-1, QK)
    if ggml_type == Q8_0:
        return _quantize_q8_0(blocks)
    if ggml_type == Q4_0:
        return _quantize_q4_0(blocks)
    raise GGUFError(f"cannot quantize to ggml type {ggml_type}")


def _quantize_q8_0(blocks: np.ndarray) -> bytes:
    d = np.abs(blocks).max(axis=1) / np.float32(127)
    inv = np.divide(np.float32(1), d, out=np.zeros_like(d), where=d != 0)
    scaled = blocks * inv[:, None]
    # C roundf: half away from zero (numpy's round is half to even).
    q = (np.sign(scaled) * np.floor(np.abs(scaled) + np.float32(0.5))).astype(np.int8)
    out = np.empty((blocks.shape[0], 34), dtype=np.uint8)
    out[:, :2] = d.astype("<f2").view(np.uint8).reshape(-1, 2)
    out[:, 2:] = q.view(np.uint8)
    return out.tobytes()


def _quantize_q4_0(blocks: np.ndarray) -> bytes:
    # The signed value with the largest magnitude (first one on ties) maps to -8.
    peak = blocks[np.arange(blocks.shape[0]), np.abs(blocks).argmax(axis=1)]
    d = peak / np.float32(-8)
    inv = np.divide(np.float32(1), d, out=np.zeros_like(d), where=d != 0)
    # C's (int8_t)(x + 8.5f) truncates toward zero; then clamp to 15.
    q = np.minimum(np.trunc(blocks * inv[:, None] + np.float32(8.5)), 15).astype(np.uint8)
    out = np.empty((blocks.shape[0], 18), dtype=np.uint8)
    out[:, :2] = d.astype("<f2").view(np.uint8).reshape(-1, 2)
    out[:, 2:] = q[:, :16] | (q[:, 16:] << 4)
    return out.tobytes()


# -- writing ------------------------------------------------------------
def _infer_type(value) -> int:
    if isinstance(value, bool):
        return T_BOOL
    if isinstance(value, int):
        return T_U32 if 0 <= value < 2 ** 32 else T_I64
    if isinstance(value, float):
        return T_F32
    if isinstance(value, str):
        return T_STRING
    if isinstance(value, (list, tuple)):
        return T_ARRAY
    raise GGUFError(f"cannot store metadata value of type {type(value).__name__}")


def _encode_value(vtype: int, value, elem_type: int = None) -> bytes:
    if vtype in _SCALAR_FORMATS:
        return struct.pack(_SCALAR_FORMATS[vtype], value)
    if vtype == T_STRING:
        raw = value.encode("utf-8")
        return struct.pack("<Q", len(raw)) + raw
    if vtype == T_ARRAY:
        items = list(value)
        if elem_type is None:
            elem_type = _infer_type(items[0]) if items else T_U32
        head = struct.pack("<IQ", elem_type, len(items))
        if elem_type in _NUMPY_DTYPES:
            return head + np.asarray(items, dtype=_NUMPY_DTYPES[elem_type]).tobytes()
        return head + b"".join(_encode_value(elem_type, item) for item in items)
    raise GGUFError(f"unknown metadata value type {vtype}")


class GGUFWriter:
    """Collects metadata and tensors, then writes one GGUF v3 file."""

    def __init__(self, alignment: int = DEFAULT_ALIGNMENT):
        self.alignment = alignment
        self.metadata: List[Tuple[str, int, Any, int]] = []
        self.tensors: List[Tuple[str, Tuple[int, ...], int, bytes]] = []

    def add(self, key: str, value) -> None:
        """Plain Python values get a natural type; wrap in Typed(...) to choose one."""
        if isinstance(value, Typed):
            self.metadata.append((key, value.vtype, value.value, value.elem_type))
        else:
            self.metadata.append((key, _infer_type(value), value, None))

    def add_tensor(self, name: str, values: np.ndarray, ggml_type: int) -> None:
        """values has numpy shape (rows, cols); stored dims are reversed (ne0 = cols)."""
        values = np.asarray(values, dtype=np.float32)
        dims = tuple(reversed(values.shape))
        if ggml_type in (Q8_0, Q4_0) and dims[0] % QK:
            raise GGUFError(f"tensor {name}: row length {dims[0]} is not a multiple of {QK}")
        self.tensors.append((name, dims, ggml_type, quantize(values, ggml_type)))

    def to_bytes(self) -> bytes:
        out = bytearray(MAGIC + struct.pack("<IQQ", VERSION, len(self.tensors), len(self.metadata)))
        for key, vtype, value, elem_type in self.metadata:
            out += _encode_value(T_STRING, key) + struct.pack("<I", vtype)
            out += _encode_value(vtype, value, elem_type)
        offset = 0
        for name, dims, ggml_type, raw in self.tensors:
            out += _encode_value(T_STRING, name) + struct.pack("<I", len(dims))
            out += struct.pack(f"<{len(dims)}Q", *dims) + struct.pack("<IQ", ggml_type, offset)
            offset = _align(offset + len(raw), self.alignment)
        out += bytes(_align(len(out), self.alignment) - len(out))
        for _, _, _, raw in self.tensors:
            out += raw + bytes(_align(len(raw), self.alignment) - len(raw))
        return bytes(out)

    def write(self, path: str) -> None:
        with open(path, "wb") as f:
            f.write(self.to_bytes())


def fnv1a64_hex(data: bytes) -> str:
    """Lowercase 16-hex-digit FNV-1a 64-bit hash (used to bind a head to its base)."""
    h = 0xCBF29CE484222325
    for byte in data:
        h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"
