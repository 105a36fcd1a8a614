"""How the queen and its hives tell each other that they run on Ray (environment variables,
so that this module imports nothing of Ray)."""

from __future__ import annotations

import os

__all__ = ["ADDRESS_ENV", "NAMESPACE", "NODE_ENV", "WORKER_CPUS_ENV", "address", "node"]

ADDRESS_ENV = "RBEE_RAY_ADDRESS"  # the cluster (queen-rbee --ray sets it)
NODE_ENV = "RBEE_RAY_NODE"  # the Ray node a hive runs on (set by the queen's hive actor)
WORKER_CPUS_ENV = "RBEE_RAY_WORKER_CPUS"  # CPUs a worker reserves (default 1)
NAMESPACE = "rbee"  # Ray namespace of rbee's actors


def address() -> str | None:
    return os.environ.get(ADDRESS_ENV) or None


def node() -> str | None:
    return os.environ.get(NODE_ENV) or None
