"""rbee's core: the hooks, the job model and the contracts plugins implement.

Imports no web framework, no CLI library and no ML library: those live in plugins.
"""

from __future__ import annotations

import pluggy

from rbee_core.plugins import create_plugin_manager

__all__ = ["__version__", "create_plugin_manager", "hookimpl"]

__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker("rbee")
"""Mark a plugin's function as an implementation of an rbee hook."""
