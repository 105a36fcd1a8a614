"""The plugin manager: built-ins and third-party plugins load the same way.

Plugins are modules or objects listed in entry-point groups. Each program loads two: its
own (``rbee.keeper``, ``rbee.queen``, ``rbee.hive``, ``rbee.worker``), for plugins that serve
only some programs, then ``rbee``, for plugins that serve every program. A plugin that
serves several programs, but not all, is listed in each of their groups under one name.
Three environment variables help debugging: ``RBEE_LOAD_PLUGINS`` (a comma-separated
allow-list of entry-point names), ``RBEE_DISABLE_PLUGINS`` (a block-list) and
``RBEE_TRACE_PLUGINS=1`` (every hook call, to stderr).
"""

from __future__ import annotations

import difflib
import sys
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, TypeVar

import pluggy

from rbee_core import hookspecs
from rbee_core.errors import ModelUnavailable, RbeeError
from rbee_core.models import ModelCatalog
from rbee_core.settings import DISABLE_PLUGINS, LOAD_PLUGINS, TRACE_PLUGINS

if TYPE_CHECKING:
    from rbee_core.backends import Backend
    from rbee_core.engine_options import EngineOptions
    from rbee_core.models import LocalModel, ModelSource

__all__ = [
    "ENTRY_POINT_GROUP",
    "PROGRAMS",
    "backend_for",
    "backend_refusal",
    "backends",
    "check_pending",
    "create_plugin_manager",
    "entry_point_groups",
    "model_catalog",
]

ENTRY_POINT_GROUP = "rbee"
"""The group of plugins for every program, and pluggy's project name."""
PROGRAMS = ("keeper", "queen", "hive", "worker")
"""The programs that load plugins; each has a group of its own, ``rbee.<program>``."""
T = TypeVar("T")


def entry_point_groups(program: str | None = None) -> list[str]:
    """The groups ``program`` loads, in order: its own, then the one for every program.

    ``None`` (tests, scripts, benchmarks) stands for every program at once.
    """
    if program is not None and program not in PROGRAMS:
        raise ValueError(f"unknown rbee program {program!r}; known: {', '.join(PROGRAMS)}")
    programs = PROGRAMS if program is None else (program,)
    return [*(f"{ENTRY_POINT_GROUP}.{p}" for p in programs), ENTRY_POINT_GROUP]


def create_plugin_manager(
    program: str | None = None, *, load_entrypoints: bool = True
) -> pluggy.PluginManager:
    """A fresh manager with rbee's hookspecs and, unless told not to, the installed plugins
    that serve ``program`` (``"keeper"``, ``"queen"``, ``"hive"`` or ``"worker"``; ``None``:
    every program's). A plugin listed in several of those groups is registered once, under
    its entry-point name. A hook implementation that matches no hookspec (a misspelled hook
    name, which would otherwise never be called) raises ``pluggy.PluginValidationError``.
    """
    groups = entry_point_groups(program)
    pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
    pm.add_hookspecs(hookspecs)
    if load_entrypoints:
        allowed = LOAD_PLUGINS.read()
        blocked = DISABLE_PLUGINS.read() or frozenset()
        installed = entry_points()  # one scan of the installed distributions for every group
        for group in groups:
            for ep in installed.select(group=group):
                if ep.name in blocked or (allowed is not None and ep.name not in allowed):
                    pm.set_blocked(ep.name)
                    continue
                if pm.get_plugin(ep.name) is None and not pm.is_blocked(ep.name):
                    pm.register(ep.load(), name=ep.name)
        check_pending(pm)
    if TRACE_PLUGINS.read():
        pm.trace.root.setwriter(sys.stderr.write)
        pm.enable_tracing()
    return pm


def check_pending(pm: pluggy.PluginManager) -> None:
    """``pm.check_pending()``, its error naming the plugin, the hook and the likeliest
    intended one: a hook implementation that matches no hookspec is refused."""
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as error:
        name = pm.get_name(error.plugin) or repr(error.plugin)
        callers = pm.get_hookcallers(error.plugin) or []
        unknown = sorted(caller.name for caller in callers if not caller.has_spec())
        known = sorted(caller.name for caller in vars(pm.hook).values() if _has_spec(caller))
        hints = []
        for hook in unknown:
            close = difflib.get_close_matches(hook, known, n=1)
            hints.append(f"{hook} (did you mean {close[0]}?)" if close else hook)
        raise pluggy.PluginValidationError(
            error.plugin,
            f"plugin {name!r} implements {', '.join(hints) or 'a hook'}, which rbee does not "
            f"have: a misspelled hook is never called. rbee's hooks: {', '.join(known)}",
        ) from error


def _has_spec(caller: Any) -> bool:
    return isinstance(caller, pluggy.HookCaller) and caller.has_spec()


def _collect(pm: pluggy.PluginManager, hook: str, **arguments: Any) -> list[Any]:
    items: list[Any] = []
    getattr(pm.hook, hook)(register=items.append, **arguments)
    return items


def backends(pm: pluggy.PluginManager, options: EngineOptions) -> dict[str, Backend]:
    """Registered backends by name, built with the program's engine ``options``; of two with
    one name, the later-registered plugin's wins."""
    found: dict[str, Backend] = {}
    for backend in reversed(_collect(pm, "rbee_register_backends", options=options)):
        found[backend.name] = backend
    return found


def backend_refusal(backend: Backend, device: str) -> str | None:
    """Why ``backend`` cannot run on ``device`` (its optional ``runs_on``), or ``None``."""
    runs_on = getattr(backend, "runs_on", None)
    return runs_on(device) if runs_on is not None else None


def backend_for(
    pm: pluggy.PluginManager,
    model: LocalModel,
    name: str,
    options: EngineOptions,
    device: str = "auto",
) -> Backend:
    """The backend called ``name``, or with ``"auto"`` the first that loads ``model.format``
    on ``device``, preferring one that loads it natively to one that must convert it
    (``Backend.converts``). A backend that cannot run on ``device`` (``runs_on``) is never
    chosen: named, it raises ``ModelUnavailable`` saying why.
    """
    found = backends(pm, options)
    if name != "auto":
        if name not in found:
            raise RbeeError(
                f"unknown backend {name!r}; installed: {', '.join(sorted(found)) or 'none'}"
            )
        if why := backend_refusal(found[name], device):
            raise ModelUnavailable(why)
        return found[name]
    loads = [b for b in found.values() if model.format in b.formats]
    able = [b for b in loads if backend_refusal(b, device) is None]
    if able:
        return min(able, key=lambda b: model.format in getattr(b, "converts", ()))
    if loads:
        why = "; ".join(f"{b.name}: {backend_refusal(b, device)}" for b in loads)
        raise ModelUnavailable(f"no installed backend runs {model.name} on {device} ({why})")
    installed = "; ".join(f"{n} loads {', '.join(b.formats)}" for n, b in found.items())
    raise ModelUnavailable(
        f"no installed backend loads {model.format!r} models like {model.name} ({installed})"
    )


def model_catalog(pm: pluggy.PluginManager) -> ModelCatalog:
    """A catalog over every registered model source."""
    sources: list[ModelSource] = list(reversed(_collect(pm, "rbee_register_model_sources")))
    return ModelCatalog(sources)
