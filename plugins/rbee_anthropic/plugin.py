"""Contributes this API's routes to the queen."""

from __future__ import annotations

from typing import Any

from rbee_anthropic.routes import anthropic_router
from rbee_core import hookimpl

__all__ = ["rbee_queen_routes"]


@hookimpl
def rbee_queen_routes() -> list[Any]:
    return [anthropic_router]
