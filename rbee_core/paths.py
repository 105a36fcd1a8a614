"""Where rbee keeps its files: XDG directories, all overridable at once.

``RBEE_HOME`` moves everything (config, cache, state) under one folder, which is what tests
and throwaway installs want. ``RBEE_MODELS_DIR`` moves only the model cache, so several
isolated state dirs can share one converted model.
"""

from __future__ import annotations

from pathlib import Path

from rbee_core.private_files import private_dir
from rbee_core.settings import (
    HOME,
    MODELS_DIR,
    XDG_CACHE_HOME,
    XDG_CONFIG_HOME,
    XDG_DATA_HOME,
    XDG_STATE_HOME,
    Setting,
)

__all__ = ["cache_dir", "config_dir", "data_dir", "logs_dir", "models_dir", "state_dir"]


def _base(xdg: Setting[str | None], default: str, sub: str) -> Path:
    home = HOME.read()
    if home:
        return Path(home) / sub
    root = xdg.read() or str(Path.home() / default)
    return Path(root) / "rbee"


def config_dir() -> Path:
    """``$XDG_CONFIG_HOME/rbee`` (``~/.config/rbee``), or ``$RBEE_HOME/config``."""
    return _base(XDG_CONFIG_HOME, ".config", "config")


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/rbee`` (``~/.cache/rbee``), or ``$RBEE_HOME/cache``."""
    return _base(XDG_CACHE_HOME, ".cache", "cache")


def data_dir() -> Path:
    """``$XDG_DATA_HOME/rbee`` (``~/.local/share/rbee``), or ``$RBEE_HOME/data``: what
    ``rbee-keeper hive install`` puts on a machine (a venv, the wheels it came from)."""
    return _base(XDG_DATA_HOME, ".local/share", "data")


def state_dir() -> Path:
    """``$XDG_STATE_HOME/rbee`` (``~/.local/state/rbee``), or ``$RBEE_HOME/state``."""
    return _base(XDG_STATE_HOME, ".local/state", "state")


def models_dir() -> Path:
    """The model cache: ``RBEE_MODELS_DIR``, else ``<cache_dir>/models``."""
    override = MODELS_DIR.read()
    return Path(override) if override else cache_dir() / "models"


def logs_dir() -> Path:
    """Daemon logs (queen, workers): ``<state_dir>/logs``, created on demand, private (0700
    in a 0700 state dir: logs quote prompts and paths)."""
    return private_dir(private_dir(state_dir()) / "logs")
