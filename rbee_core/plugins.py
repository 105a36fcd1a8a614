"""The plugin manager: built-ins and third-party plugins load the same way.

Plugins are modules or objects listed in the ``rbee`` entry-point group. Two environment
variables help debugging: ``RBEE_LOAD_PLUGINS`` (a comma-separated allow-list of entry-point
names) and ``RBEE_DISABLE_PLUGINS`` (a block-list). ``RBEE_TRACE_PLUGINS=1`` prints every hook
call to stderr.
"""

from __future__ import annotations

import os
import sys
from importlib.metadata import entry_points
from typing import Any, TypeVar

import pluggy

from rbee_core import hookspecs
from rbee_core.backends import Backend
from rbee_core.errors import ModelUnavailable, RbeeError
from rbee_core.models import LocalModel, ModelCatalog, ModelSource

__all__ = [
    "ENTRY_POINT_GROUP",
    "backend_for",
    "backends",
    "create_plugin_manager",
    "model_catalog",
]

ENTRY_POINT_GROUP = "rbee"
T = TypeVar("T")


def _names(var: str) -> set[str] | None:
    raw = os.environ.get(var)
    if raw is None:
        return None
    return {name.strip() for name in raw.split(",") if name.strip()}


def create_plugin_manager(load_entrypoints: bool = True) -> pluggy.PluginManager:
    """A fresh manager with rbee's hookspecs and, unless told not to, every installed plugin."""
    pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
    pm.add_hookspecs(hookspecs)
    if load_entrypoints:
        allowed = _names("RBEE_LOAD_PLUGINS")
        blocked = _names("RBEE_DISABLE_PLUGINS") or set()
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if ep.name in blocked or (allowed is not None and ep.name not in allowed):
                pm.set_blocked(ep.name)
                continue
            if pm.get_plugin(ep.name) is None and not pm.is_blocked(ep.name):
                pm.register(ep.load(), name=ep.name)
    if os.environ.get("RBEE_TRACE_PLUGINS"):
        pm.trace.root.setwriter(sys.stderr.write)
        pm.enable_tracing()
    return pm


def _collect(pm: pluggy.PluginManager, hook: str) -> list[Any]:
    items: list[Any] = []
    getattr(pm.hook, hook)(register=items.append)
    return items


def backends(pm: pluggy.PluginManager) -> dict[str, Backend]:
    """Registered backends by name; of two with one name, the later-registered plugin's wins."""
    found: dict[str, Backend] = {}
    for backend in reversed(_collect(pm, "rbee_register_backends")):
        found[backend.name] = backend
    return found


def backend_for(pm: pluggy.PluginManager, model: LocalModel, name: str = "auto") -> Backend:
    """The backend called ``name``, or with ``"auto"`` the first that loads ``model.format``,
    preferring one that loads it natively to one that must convert it (``Backend.converts``).
    """
    found = backends(pm)
    if name != "auto":
        if name not in found:
            raise RbeeError(
                f"unknown backend {name!r}; installed: {', '.join(sorted(found)) or 'none'}"
            )
        return found[name]
    able = [b for b in found.values() if model.format in b.formats]
    if able:
        return min(able, key=lambda b: model.format in getattr(b, "converts", ()))
    installed = "; ".join(f"{n} loads {', '.join(b.formats)}" for n, b in found.items())
    raise ModelUnavailable(
        f"no installed backend loads {model.format!r} models like {model.name} ({installed})"
    )


def model_catalog(pm: pluggy.PluginManager) -> ModelCatalog:
    """A catalog over every registered model source."""
    sources: list[ModelSource] = list(reversed(_collect(pm, "rbee_register_model_sources")))
    return ModelCatalog(sources)
