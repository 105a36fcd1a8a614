"""Contributes this API's routes to the queen."""

from __future__ import annotations

from typing import Any

from rbee_core import hookimpl
from rbee_responses.routes import responses_router

__all__ = ["rbee_queen_routes"]


@hookimpl
def rbee_queen_routes() -> list[Any]:
    return [responses_router]
