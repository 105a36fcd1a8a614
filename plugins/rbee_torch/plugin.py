"""Registers the torch backend with rbee."""

from __future__ import annotations

from collections.abc import Callable

from rbee_core import hookimpl
from rbee_core.backends import Backend
from rbee_core.engine_options import EngineOptions
from rbee_torch.backend import TorchBackend

__all__ = ["rbee_register_backends"]


@hookimpl
def rbee_register_backends(register: Callable[[Backend], None], options: EngineOptions) -> None:
    register(TorchBackend(options))
