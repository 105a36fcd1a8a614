"""Registers the llama.cpp backend with rbee, when llama-cpp-python is installed."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable

from rbee_core import hookimpl
from rbee_core.backends import Backend
from rbee_core.engine_options import EngineOptions

__all__ = ["rbee_register_backends"]


@hookimpl
def rbee_register_backends(register: Callable[[Backend], None], options: EngineOptions) -> None:
    # Found, not imported: the hive loads this plugin too (to list backends and size
    # workers), only workers load models.
    if importlib.util.find_spec("llama_cpp") is not None:
        from rbee_llamacpp.backend import LlamaCppBackend

        register(LlamaCppBackend(options))
