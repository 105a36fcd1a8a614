"""Retiring a worker: its hive unloads it to make room, but only while it has no job.

The hive learns whether a worker is busy from heartbeats, seconds old, while the queen sends
jobs straight to the worker; so the hive never decides alone. It asks the worker to retire
(``POST /retire``), and the worker agrees only if it has had no job, running, queued or just
accepted, for ``min_idle`` seconds. From then on it refuses every job with
``worker_retired``, which the queen takes as "this worker is gone, place the job again": a
job accepted by the queen is never lost to an eviction.
"""

from __future__ import annotations

from rbee_core.errors import WorkerRetired

__all__ = ["WorkerRetired"]
