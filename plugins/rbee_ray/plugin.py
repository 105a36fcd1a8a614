"""rbee on Ray: the queen keeps a hive on every Ray node; such a hive starts its workers as
Ray actors. Both only when asked (``queen-rbee --ray``, a hive the queen put on a Ray node):
otherwise these hooks import nothing of Ray."""

from __future__ import annotations

import asyncio
from typing import Any

from rbee_core import hookimpl
from rbee_ray import settings

__all__ = ["rbee_queen_started", "rbee_worker_launcher"]


@hookimpl
def rbee_queen_started(queen: Any) -> None:
    address = settings.address()
    if address is None:
        return
    from rbee_ray.nodes import NodeWatcher

    queen.keep(asyncio.create_task(NodeWatcher(queen, address).run(), name="ray-nodes"))


@hookimpl
def rbee_worker_launcher() -> Any:
    address, node = settings.address(), settings.node()
    if address is None or node is None:
        return None
    from rbee_ray.workers import launcher

    return launcher(address, node)
