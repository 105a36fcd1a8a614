"""The console's routes and its feed, contributed to the queen like any plugin's."""

from __future__ import annotations

from typing import Any

from rbee_console import events, pages
from rbee_core import hookimpl
from rbee_core.queen_api import QueenApi

__all__ = ["rbee_queen_routes", "rbee_queen_started"]


@hookimpl
def rbee_queen_routes() -> list[Any]:
    return [*pages.ROUTES, *events.ROUTES]


@hookimpl
def rbee_queen_started(queen: QueenApi) -> None:
    # Sample from the start, so the charts have a history when the console first opens.
    events.feed_of(queen)
