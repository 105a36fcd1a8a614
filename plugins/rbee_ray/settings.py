"""How the queen and its hives tell each other that they run on Ray (environment variables,
so that this module imports nothing of Ray)."""

from __future__ import annotations

from rbee_core.settings import RAY_ADDRESS, RAY_NODE, RAY_WORKER_CPUS

__all__ = ["ADDRESS_ENV", "NAMESPACE", "NODE_ENV", "WORKER_CPUS_ENV", "address", "node"]

ADDRESS_ENV = RAY_ADDRESS.name  # the cluster (queen-rbee --ray sets it)
NODE_ENV = RAY_NODE.name  # the Ray node a hive runs on (set by the queen's hive actor)
WORKER_CPUS_ENV = RAY_WORKER_CPUS.name  # CPUs a worker reserves (default 1)
NAMESPACE = "rbee"  # Ray namespace of rbee's actors


def address() -> str | None:
    """The Ray cluster's address, ``RBEE_RAY_ADDRESS``; None: no Ray."""
    return RAY_ADDRESS.read()


def node() -> str | None:
    """The Ray node this hive runs on, ``RBEE_RAY_NODE``; None: not on Ray."""
    return RAY_NODE.read()
