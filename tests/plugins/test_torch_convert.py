"""rbee_torch.convert: the GGUF -> safetensors cache is keyed by the source file's sha256,
so a file replaced by another of the same name and size is never served a stale copy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rbee_core.models import LocalModel
from rbee_torch import convert


def model(path: Path, data: bytes) -> LocalModel:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return LocalModel(path.stem, path, "gguf")


def test_the_key_is_the_content_not_the_name_and_size(tmp_path: Path) -> None:
    a = model(tmp_path / "a" / "m.gguf", b"GGUF one")
    b = model(tmp_path / "b" / "m.gguf", b"GGUF two")  # same name, same size
    c = model(tmp_path / "c" / "m.gguf", b"GGUF one")  # same file installed elsewhere
    assert convert.converted_path(a) != convert.converted_path(b)
    assert convert.converted_path(a) == convert.converted_path(c)


def test_a_replaced_file_is_converted_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    converted: list[bytes] = []

    def fake_convert(gguf: Path, out: Path) -> None:
        out.mkdir(parents=True)
        (out / "model.safetensors").write_bytes(gguf.read_bytes())
        converted.append(gguf.read_bytes())

    monkeypatch.setattr(convert, "_convert", fake_convert)
    said: list[str] = []

    def narrate(action: str, message: str, progress: dict[str, Any] | None = None) -> None:
        said.append(action)

    local = model(tmp_path / "m.gguf", b"GGUF one")
    first = convert.ensure_safetensors(local, narrate)
    assert convert.ensure_safetensors(local, narrate) == first  # cached
    local.path.write_bytes(b"GGUF two")  # replaced: same name, same size
    second = convert.ensure_safetensors(local, narrate)
    assert second != first
    assert (second / "model.safetensors").read_bytes() == b"GGUF two"
    assert converted == [b"GGUF one", b"GGUF two"]
