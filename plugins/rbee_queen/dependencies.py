"""What the queen's app injects into route handlers (its own and every plugin's).

A handler that declares a parameter ``queen`` gets the one ``Queen``. Plugins annotate it
``QueenApiDep``: the part of the queen declared for them (``rbee_core.queen_api``, hookspec
``rbee_queen_routes``). The queen's own routes, and plugins that manage hives themselves,
annotate it ``QueenDep``: the whole service object.
"""

from __future__ import annotations

from typing import Annotated, TypeAlias

from litestar.di import Dependency, NamedDependency
from litestar.params import SkipValidationMarker

from rbee_core.queen_api import QueenApi
from rbee_queen.orchestrator import Queen

__all__ = ["QueenApiDep", "QueenDep"]

QueenDep: TypeAlias = NamedDependency[Queen]
# A Protocol cannot be checked with isinstance (nor need be: the app provides the one Queen).
QueenApiDep: TypeAlias = Annotated[QueenApi, Dependency(kind="named"), SkipValidationMarker()]

# mypy holds the Queen to the contract its plugins were given.
_CONTRACT: type[QueenApi] = Queen
