"""rbee_core.gguf: a header is read with bounded sizes, so a hostile or damaged file is a
clear error instead of a huge allocation or an endless loop."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from rbee_core.errors import ModelUnavailable
from rbee_core.gguf import MAX_ARRAY_ITEMS, MAX_DIMS, MAX_STRING_BYTES, read_gguf_header

STRING, ARRAY, UINT32 = 8, 9, 4


def s(text: str) -> bytes:
    data = text.encode()
    return struct.pack("<Q", len(data)) + data


def gguf(keys: list[bytes], tensors: list[bytes]) -> bytes:
    return b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(keys)) + b"".join(keys + tensors)


def tensor(name: str, *shape: int) -> bytes:
    return (
        s(name)
        + struct.pack("<I", len(shape))
        + struct.pack(f"<{len(shape)}Q", *shape)
        + (struct.pack("<IQ", 0, 0))
    )


def write(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "m.gguf"
    path.write_bytes(data)
    return path


def test_a_small_well_formed_header_is_read(tmp_path: Path) -> None:
    keys = [
        s("general.architecture") + struct.pack("<I", STRING) + s("llama"),
        s("llama.block_count") + struct.pack("<II", UINT32, 2),
        s("tokenizer.ggml.tokens") + struct.pack("<IIQ", ARRAY, STRING, 2) + s("a") + s("b"),
    ]
    header = read_gguf_header(write(tmp_path, gguf(keys, [tensor("w", 3, 4)])))
    assert header.architecture == "llama"
    assert header.arch("block_count") == 2
    assert header.array_lengths == {"tokenizer.ggml.tokens": 2}
    assert header.parameters == 12


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        # A key whose length claims 16 EiB: no read of that size is ever tried.
        (
            b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", 2**64 - 1),
            f"a string's length is {2**64 - 1}, over the limit of {MAX_STRING_BYTES}",
        ),
        (
            gguf(
                [s("k") + struct.pack("<I", STRING) + struct.pack("<Q", MAX_STRING_BYTES + 1)], []
            ),
            "a string's length is",
        ),
        (
            gguf([s("k") + struct.pack("<IIQ", ARRAY, UINT32, MAX_ARRAY_ITEMS + 1)], []),
            f"an array's item count is {MAX_ARRAY_ITEMS + 1}, over the limit",
        ),
        (
            gguf([s("k") + struct.pack("<IIQ", ARRAY, STRING, 1) + struct.pack("<Q", 2**40)], []),
            "a string's length is",
        ),
        (
            b"GGUF" + struct.pack("<IQQ", 3, 1, 0) + s("w") + struct.pack("<I", 2**31),
            f"a tensor's dimension count is {2**31}, over the limit of {MAX_DIMS}",
        ),
        (b"GGUF" + struct.pack("<IQQ", 3, 2**40, 0), "the tensor count is"),
        (b"GGUF" + struct.pack("<IQQ", 3, 0, 2**40), "the metadata key count is"),
        # Within the bounds, but past the end of the file.
        (gguf([s("k") + struct.pack("<IIQ", ARRAY, UINT32, 1000)], []), "it ends early"),
        (gguf([s("k") + struct.pack("<I", STRING) + struct.pack("<Q", 100) + b"x"], []), "ends"),
    ],
)
def test_absurd_sizes_are_refused_with_the_reason(tmp_path: Path, data: bytes, reason: str) -> None:
    path = write(tmp_path, data)
    with pytest.raises(ModelUnavailable) as caught:
        read_gguf_header(path)
    assert caught.value.message.startswith(f"{path} is not a readable GGUF file: ")
    assert reason in caught.value.message
