"""What a GGUF file's header says about the model, read without loading the file.

Hives size a worker before they start it, and must not pay for an inference library to do
so: ``gguf.GGUFReader`` parses every array (a 49k-token vocabulary takes seconds); this
reads the scalars and tensor shapes and skips the arrays. The format:
https://github.com/ggml-org/ggml/blob/master/docs/gguf.md
"""

from __future__ import annotations

import math
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from rbee_core.errors import ModelUnavailable

__all__ = [
    "FILE_TYPES",
    "MAX_ARRAY_ITEMS",
    "MAX_DIMS",
    "MAX_KEYS",
    "MAX_STRING_BYTES",
    "MAX_TENSORS",
    "GGUFHeader",
    "read_gguf_header",
]

_MAGIC = b"GGUF"
# Value types: the struct format of each fixed-size scalar (8 = string, 9 = array).
_SCALARS = {
    0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"
}  # fmt: skip
_STRING, _ARRAY = 8, 9

# ``general.file_type``: llama.cpp's ``llama_ftype`` names, for people to read.
FILE_TYPES = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K",
    11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S",
    17: "Q5_K_M", 18: "Q6_K", 19: "IQ2_XXS", 20: "IQ2_XS", 21: "Q2_K_S", 22: "IQ3_XS",
    23: "IQ3_XXS", 24: "IQ1_S", 25: "IQ4_NL", 26: "IQ3_S", 27: "IQ3_M", 28: "IQ2_S",
    29: "IQ2_M", 30: "IQ4_XS", 31: "IQ1_M", 32: "BF16", 36: "TQ1_0", 37: "TQ2_0", 38: "MXFP4",
}  # fmt: skip

Scalar = int | float | bool | str


@dataclass(frozen=True, slots=True)
class GGUFHeader:
    """The scalar metadata (arrays are left out, their lengths kept in ``array_lengths``)
    and the number of weights of a GGUF file."""

    metadata: dict[str, Scalar]
    parameters: int
    array_lengths: dict[str, int] = field(default_factory=dict)

    @property
    def architecture(self) -> str:
        return str(self.metadata.get("general.architecture", "unknown"))

    def arch(self, key: str, default: int = 0) -> int:
        """An architecture-specific number, e.g. ``arch("block_count")``."""
        value = self.metadata.get(f"{self.architecture}.{key}", default)
        return int(value) if isinstance(value, int | float) else default

    @property
    def quantization(self) -> str:
        """``Q4_K_M``, ``F16``...: the file type llama.cpp reports."""
        file_type = self.metadata.get("general.file_type")
        if not isinstance(file_type, int):
            return "unknown"
        return FILE_TYPES.get(file_type, f"type {file_type}")

    @property
    def context_length(self) -> int:
        return self.arch("context_length")

    def kv_bytes_per_token(self, element_size: int) -> int:
        """KV cache bytes one token takes: keys and values, every layer, every KV head."""
        heads = self.arch("attention.head_count") or 1
        kv_heads = self.arch("attention.head_count_kv") or heads
        key = self.arch("attention.key_length") or self.arch("embedding_length") // heads
        value = self.arch("attention.value_length") or key
        return self.arch("block_count") * kv_heads * (key + value) * element_size


# Bounds on what a header may claim, far above any real model's (a 256k-token vocabulary,
# a 100 KB chat template, a few thousand tensors of at most 4 dimensions): a hostile or
# damaged file is refused with its reason instead of making the reader allocate or loop.
MAX_STRING_BYTES = 8 << 20
MAX_ARRAY_ITEMS = 1 << 24
MAX_KEYS = 1 << 16
MAX_TENSORS = 1 << 20
MAX_DIMS = 8


def _bounded(count: int, limit: int, what: str) -> int:
    if count > limit:
        raise ValueError(f"{what} is {count}, over the limit of {limit}")
    return count


class _Reader:
    def __init__(self, f: BinaryIO, size: int) -> None:
        self._f = f
        self._size = size

    def take(self, fmt: str) -> tuple[int | float | bool, ...]:
        size = struct.calcsize("<" + fmt)
        data = self._f.read(size)
        if len(data) != size:
            raise EOFError
        return tuple(struct.unpack("<" + fmt, data))

    def skip(self, n: int) -> None:
        if self._f.tell() + n > self._size:
            raise EOFError
        self._f.seek(n, 1)

    def string(self) -> str:
        (n,) = self.take("Q")
        _bounded(int(n), MAX_STRING_BYTES, "a string's length")
        data = self._f.read(int(n))
        if len(data) != n:
            raise EOFError
        return data.decode("utf-8", errors="replace")

    def value(self, kind: int) -> Scalar | None:
        if kind == _STRING:
            return self.string()
        if kind in _SCALARS:
            return self.take(_SCALARS[kind])[0]
        raise ValueError(f"unknown GGUF value type {kind}")

    def skip_array(self) -> int:
        kind, n = (int(x) for x in self.take("IQ"))
        _bounded(n, MAX_ARRAY_ITEMS, "an array's item count")
        if kind in _SCALARS:
            self.skip(n * struct.calcsize("<" + _SCALARS[kind]))
        elif kind == _STRING:
            for _ in range(n):
                (length,) = self.take("Q")
                self.skip(_bounded(int(length), MAX_STRING_BYTES, "a string's length"))
        else:  # arrays of arrays: no model rbee knows has them
            raise ValueError(f"unsupported GGUF array of type {kind}")
        return n


def read_gguf_header(path: Path) -> GGUFHeader:
    """Read ``path``'s header; raise ``ModelUnavailable`` naming it if it is not GGUF."""
    try:
        with open(path, "rb") as f:
            if f.read(4) != _MAGIC:
                raise ModelUnavailable(f"{path} is not a GGUF file (no GGUF magic number)")
            r = _Reader(f, os.fstat(f.fileno()).st_size)
            version, tensors, keys = (int(x) for x in r.take("IQQ"))
            if version < 2:
                raise ModelUnavailable(f"{path} is GGUF version {version}; rbee reads 2 and up")
            _bounded(tensors, MAX_TENSORS, "the tensor count")
            _bounded(keys, MAX_KEYS, "the metadata key count")
            metadata: dict[str, Scalar] = {}
            arrays: dict[str, int] = {}
            for _ in range(keys):
                key = r.string()
                (kind,) = r.take("I")
                if kind == _ARRAY:
                    arrays[key] = r.skip_array()
                else:
                    value = r.value(int(kind))
                    assert value is not None
                    metadata[key] = value
            parameters = 0
            for _ in range(tensors):
                r.string()  # name
                (dims,) = r.take("I")
                shape = r.take("Q" * _bounded(int(dims), MAX_DIMS, "a tensor's dimension count"))
                r.skip(4 + 8)  # type, offset
                parameters += math.prod(int(d) for d in shape)
    except (EOFError, ValueError, struct.error) as exc:
        why = str(exc) or "it ends early"
        raise ModelUnavailable(f"{path} is not a readable GGUF file: {why}") from None
    except OSError as exc:
        raise ModelUnavailable(f"cannot read {path}: {exc.strerror or exc}") from exc
    return GGUFHeader(metadata, parameters, arrays)
