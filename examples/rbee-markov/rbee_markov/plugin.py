"""The module the ``rbee`` entry point names: rbee registers it with its plugin manager.

Each function marked ``@hookimpl`` implements the hook of the same name declared in
``rbee_core.hookspecs``. This plugin implements two of them.
"""

from __future__ import annotations

from collections.abc import Callable

from rbee_core import hookimpl
from rbee_core.backends import Backend
from rbee_core.models import ModelSource

from rbee_markov.backend import MarkovBackend
from rbee_markov.source import MarkovSource

__all__ = ["rbee_register_backends", "rbee_register_model_sources"]


@hookimpl
def rbee_register_backends(register: Callable[[Backend], None]) -> None:
    """Called in each worker: makes the ``markov`` backend available."""
    register(MarkovBackend())


@hookimpl
def rbee_register_model_sources(register: Callable[[ModelSource], None]) -> None:
    """Called in the queen and in workers: adds the ``markov:`` scheme and ``markov-demo``."""
    register(MarkovSource())
