"""A fast, defensive reader of a GGUF file's header: metadata and tensor table, never the weights.

gguf.GGUFReader parses every vocabulary entry into numpy objects (25 s for the
default model's 262k tokens); this reader skips large arrays by their lengths,
bounds every count and length by the file size, so a damaged file raises
`HeaderError` instead of allocating gigabytes or reading garbage.
"""
from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass
from pathlib import Path

from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, GGUFValueType

MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)
DEFAULT_ALIGNMENT = 32
MAX_KEPT_ARRAY = 1024  # arrays longer than this (vocabularies) are kept as ArrayRef

_SCALAR = {
    GGUFValueType.UINT8: "<B", GGUFValueType.INT8: "<b",
    GGUFValueType.UINT16: "<H", GGUFValueType.INT16: "<h",
    GGUFValueType.UINT32: "<I", GGUFValueType.INT32: "<i",
    GGUFValueType.FLOAT32: "<f", GGUFValueType.BOOL: "<?",
    GGUFValueType.UINT64: "<Q", GGUFValueType.INT64: "<q",
    GGUFValueType.FLOAT64: "<d",
}


class HeaderError(Exception):
    """The header is not a readable GGUF header; `offset` is where reading failed."""

    def __init__(self, message: str, offset: int = 0) -> None:
        super().__init__(message)
        self.offset = offset


@dataclass(frozen=True, slots=True)
class ArrayRef:
    """A long array left in the file: its item type, length and where its items start."""

    item_type: int
    count: int
    offset: int


@dataclass(frozen=True, slots=True)
class TensorInfo:
    name: str
    shape: tuple[int, ...]
    type_name: str
    offset: int  # absolute, in the file
    n_bytes: int

    @property
    def n_elements(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n


@dataclass(frozen=True, slots=True)
class Header:
    version: int
    metadata: dict
    tensors: tuple[TensorInfo, ...]
    data_offset: int
    file_size: int

    @property
    def data_end(self) -> int:
        """Where the last tensor's data ends: the smallest size a complete file can have."""
        return max((t.offset + t.n_bytes for t in self.tensors), default=self.data_offset)


class _Cursor:
    def __init__(self, buf, size: int) -> None:
        self.buf, self.size, self.pos = buf, size, 0

    def take(self, n: int, what: str) -> bytes:
        if n < 0 or self.pos + n > self.size:
            raise HeaderError(f"the file ends inside the {what}", self.pos)
        out = self.buf[self.pos:self.pos + n]
        self.pos += n
        return out

    def unpack(self, fmt: str, what: str):
        return struct.unpack(fmt, self.take(struct.calcsize(fmt), what))[0]

    def count(self, what: str, min_item_bytes: int) -> int:
        n = self.unpack("<Q", what)
        if n * min_item_bytes > self.size - self.pos:
            raise HeaderError(f"the {what} ({n:,}) cannot fit in the file", self.pos)
        return n

    def string(self, what: str) -> str:
        n = self.count(f"length of a {what}", 1)
        return self.take(n, what).decode("utf-8", errors="replace")

    def skip_strings(self, count: int, what: str) -> None:
        for _ in range(count):
            n = self.count(f"length of a {what}", 1)
            self.pos += n


def _value(cur: _Cursor, vtype: int, key: str):
    if vtype in _SCALAR:
        return cur.unpack(_SCALAR[vtype], f"value of {key}")
    if vtype == GGUFValueType.STRING:
        return cur.string(f"value of {key}")
    if vtype == GGUFValueType.ARRAY:
        item_type = cur.unpack("<I", f"array type of {key}")
        if item_type == GGUFValueType.ARRAY:
            raise HeaderError(f"{key} is a nested array, which GGUF readers do not support", cur.pos)
        item_bytes = struct.calcsize(_SCALAR[item_type]) if item_type in _SCALAR else 8
        if item_type not in _SCALAR and item_type != GGUFValueType.STRING:
            raise HeaderError(f"{key} has an unknown array item type {item_type}", cur.pos)
        count = cur.count(f"length of {key}", item_bytes)
        if count > MAX_KEPT_ARRAY:
            ref = ArrayRef(item_type, count, cur.pos)
            if item_type == GGUFValueType.STRING:
                cur.skip_strings(count, f"item of {key}")
            else:
                cur.take(count * item_bytes, key)
            return ref
        return [_value(cur, item_type, key) for _ in range(count)]
    raise HeaderError(f"{key} has an unknown value type {vtype}", cur.pos)


def _tensor_bytes(shape: tuple[int, ...], type_id: int, name: str, pos: int) -> tuple[str, int]:
    try:
        qtype = GGMLQuantizationType(type_id)
    except ValueError:
        raise HeaderError(f"tensor {name} has an unknown type id {type_id}", pos) from None
    block, type_size = GGML_QUANT_SIZES[qtype]
    n = 1
    for d in shape:
        n *= d
    if n % block:
        raise HeaderError(f"tensor {name} has {n} elements, not a multiple of its block size {block}", pos)
    return qtype.name, n // block * type_size


def read_header(path: str | Path) -> Header:
    """Parse the header of the GGUF file at `path`; raise HeaderError where it is not valid."""
    with open(path, "rb") as f:
        size = f.seek(0, 2)
        if size == 0:
            raise HeaderError("the file is empty")
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            return _parse(_Cursor(buf, size), size)


def _parse(cur: _Cursor, size: int) -> Header:
    if cur.take(min(4, size), "magic number") != MAGIC:
        raise HeaderError("the file does not start with the GGUF magic number")
    version = cur.unpack("<I", "version")
    if version not in SUPPORTED_VERSIONS:
        raise HeaderError(f"GGUF version {version} is not supported (only {SUPPORTED_VERSIONS})", 4)
    n_tensors = cur.count("tensor count", 24)
    n_kv = cur.count("metadata count", 12)
    metadata: dict = {}
    for _ in range(n_kv):
        key = cur.string("metadata key")
        vtype = cur.unpack("<I", f"type of {key}")
        metadata[key] = _value(cur, vtype, key)
    alignment = metadata.get("general.alignment", DEFAULT_ALIGNMENT)
    if not isinstance(alignment, int) or alignment <= 0 or alignment & (alignment - 1):
        raise HeaderError(f"general.alignment is {alignment!r}, not a power of two", cur.pos)
    raw = []
    for _ in range(n_tensors):
        name = cur.string("tensor name")
        n_dims = cur.unpack("<I", f"dimension count of {name}")
        if not 1 <= n_dims <= 4:
            raise HeaderError(f"tensor {name} claims {n_dims} dimensions", cur.pos)
        shape = tuple(cur.unpack("<Q", f"shape of {name}") for _ in range(n_dims))
        type_id = cur.unpack("<I", f"type of {name}")
        offset = cur.unpack("<Q", f"offset of {name}")
        raw.append((name, shape, type_id, offset, cur.pos))
    data_offset = -(-cur.pos // alignment) * alignment
    tensors = []
    for name, shape, type_id, offset, pos in raw:
        type_name, n_bytes = _tensor_bytes(shape, type_id, name, pos)
        tensors.append(TensorInfo(name, shape, type_name, data_offset + offset, n_bytes))
    return Header(version, metadata, tuple(tensors), data_offset, size)


def read_string_array(path: str | Path, ref: ArrayRef) -> list[str]:
    """Read a long string array (e.g. the vocabulary) that read_header left in the file."""
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        cur = _Cursor(buf, len(buf))
        cur.pos = ref.offset
        return [cur.string("vocabulary entry") for _ in range(ref.count)]
