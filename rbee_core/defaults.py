"""A job's defaults, wherever one is made: the API (rbee_core.jobs), the CLI, a backend's
parameters (rbee_core.backends). A module of its own so the keeper reads them without
importing the backend protocols."""

from __future__ import annotations

__all__ = ["DEFAULT_MAX_TOKENS", "DEFAULT_TEMPERATURE"]

DEFAULT_MAX_TOKENS = 128
DEFAULT_TEMPERATURE = 0.7
