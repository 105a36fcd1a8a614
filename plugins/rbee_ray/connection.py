"""One connection to the Ray cluster per process (queen or hive), made off the event loop."""

from __future__ import annotations

import asyncio
import logging
import signal
import socket

import ray

from rbee_ray.settings import NAMESPACE

__all__ = ["connect"]

log = logging.getLogger("rbee.ray")
_lock = asyncio.Lock()


def _check_reachable(address: str) -> None:
    """A ``HOST:PORT`` where nothing listens fails here at once; ``ray.init`` would retry
    for minutes, saying why only in its own log lines."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or "://" in address:
        return  # "auto", "ray://...": Ray's to find
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=5).close()
    except OSError as exc:
        raise ConnectionError(
            f"nothing answers at {address} ({exc.strerror or exc}); is `ray start --head` "
            "running there?"
        ) from None


async def connect(address: str) -> str:
    """Join the cluster at ``address`` (once); the GCS address it has, for other machines."""
    async with _lock:
        if not ray.is_initialized():
            await asyncio.to_thread(_check_reachable, address)
            # Ray's core installs its own SIGTERM and SIGINT handlers (a stack dump, then
            # death): put back the server's, so the daemon still shuts down gracefully.
            handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
            await asyncio.to_thread(
                ray.init,
                address=address,
                namespace=NAMESPACE,
                log_to_driver=False,  # the actors' processes have their own logs
                configure_logging=False,
            )
            for sig, handler in handlers.items():
                if handler is not None:
                    signal.signal(sig, handler)
            log.info("joined the Ray cluster at %s", address)
    return str(ray.get_runtime_context().gcs_address)
