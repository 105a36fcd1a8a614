"""A split worker's side of its parts: a tunnel to each (rpc_guard.py), checked, then
added as llama.cpp RPC devices that the model's last layers load onto."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from rbee_core.errors import ModelUnavailable
from rbee_core.model_split import ModelPart
from rbee_core.narration import Narrate
from rbee_llamacpp.rpc_guard import Tunnel

__all__ = ["reach_parts"]

log = logging.getLogger("rbee.llamacpp")
# Open for as long as the worker runs: llama.cpp reaches its parts through them.
_tunnels: list[Tunnel] = []


def _lost(why: str) -> None:
    # llama.cpp aborts the worker at its next call to the part; this says why, in its log.
    log.error("%s; this worker cannot go on without it", why)
    print(f"rbee: {why}; this worker cannot go on without it", file=sys.stderr, flush=True)


def reach_parts(parts: Sequence[ModelPart], narrate: Narrate) -> list[tuple[int, int]]:
    """(llama.cpp device, layers) of each part, in order, each reached and added as a
    device; ``ModelUnavailable`` naming the part that cannot be reached."""
    from rbee_llamacpp.library import add_rpc_server

    found = []
    for part in parts:
        tunnel = Tunnel(part.hive, part.endpoint, part.token, _lost)
        try:
            tunnel.check()
        except ConnectionError as exc:
            tunnel.close()
            raise ModelUnavailable(str(exc)) from None
        _tunnels.append(tunnel)
        narrate(
            "part_reached",
            f"reached the part on hive {part.hive} ({part.endpoint}) for {part.layers} layers",
        )
        found.append((add_rpc_server(tunnel.local), part.layers))
    return found
