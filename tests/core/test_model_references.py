"""A model reference's scheme is case-insensitive (``HF:org/name`` is ``hf:org/name``), as
URL schemes are; the rest of it is kept as typed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rbee_core.errors import InvalidRequest
from rbee_core.models import LocalModel, ModelCatalog, normalize_reference


class Source:
    def __init__(self, scheme: str) -> None:
        self.scheme = scheme
        self.checked: list[str] = []

    def aliases(self) -> dict[str, str]:
        return {"tiny": f"{self.scheme}:Org/Tiny"} if self.scheme == "hf" else {}

    def check(self, ref: str) -> None:
        self.checked.append(ref)

    def provision(self, ref: str, narrate: Any) -> LocalModel:
        return LocalModel(name=ref, path=Path("/nonexistent"), format="fake")


@pytest.mark.parametrize(
    ("typed", "normal"),
    [
        ("HF:author/minillama", "hf:author/minillama"),
        ("File:/Models/X.gguf", "file:/Models/X.gguf"),
        ("hf:Org/Name", "hf:Org/Name"),
        ("smollm2-135m", "smollm2-135m"),
        ("HTTPS://host/A.gguf", "https://host/A.gguf"),
    ],
)
def test_only_the_scheme_is_lowered(typed: str, normal: str) -> None:
    assert normalize_reference(typed) == normal


def test_the_catalog_resolves_and_names_any_spelling_of_a_scheme_alike() -> None:
    hf, file = Source("hf"), Source("file")
    catalog = ModelCatalog([hf, file])
    ref, source = catalog.resolve("HF:author/minillama")
    assert (ref, source) == ("hf:author/minillama", hf)
    assert hf.checked == ["hf:author/minillama"]  # the source never sees "HF:"
    assert catalog.resolve("File:/x")[0] == "file:/x"
    assert catalog.name_of("HF:Org/Tiny") == "tiny"  # the alias of hf:Org/Tiny
    assert catalog.name_of("HF:author/minillama") == "hf:author/minillama"


def test_an_unknown_scheme_is_still_refused() -> None:
    with pytest.raises(InvalidRequest, match="unknown model reference scheme 'ftp:'"):
        ModelCatalog([Source("hf")]).resolve("FTP:somewhere")
