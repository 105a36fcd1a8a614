"""The queen's built-in plugin: its HTTP API and the default scheduling policy."""

from __future__ import annotations

from typing import Any

from rbee_core import hookimpl
from rbee_queen.hive_routes import HIVE_ROUTES
from rbee_queen.model_routes import MODEL_ROUTES
from rbee_queen.routes import ROUTES
from rbee_queen.scheduler import rbee_schedule

__all__ = ["rbee_queen_routes", "rbee_schedule"]


@hookimpl
def rbee_queen_routes() -> list[Any]:
    return [*ROUTES, *MODEL_ROUTES, *HIVE_ROUTES]
