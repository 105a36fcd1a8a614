"""What the queen's app injects into route handlers (its own and every plugin's).

A handler that declares ``queen: QueenDep`` gets the one ``Queen``: the service object that
holds the jobs, the hives and the workers (hookspec ``rbee_queen_routes``).
"""

from __future__ import annotations

from typing import TypeAlias

from litestar.di import NamedDependency

from rbee_queen.orchestrator import Queen

__all__ = ["QueenDep"]

QueenDep: TypeAlias = NamedDependency[Queen]
