"""Observes jobs through the core's hooks and serves them as ``GET /metrics``."""

from __future__ import annotations

from typing import Any

from litestar import Response, get
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from rbee_core import hookimpl
from rbee_core.jobs import Job
from rbee_core.narration import MODEL_CONVERTED, MODEL_DOWNLOADED, Narration
from rbee_metrics import metrics
from rbee_queen.dependencies import QueenApiDep

__all__ = ["rbee_job_finished", "rbee_job_submitted", "rbee_narrate", "rbee_queen_routes"]


@get("/metrics", media_type=CONTENT_TYPE_LATEST)
async def scrape(queen: QueenApiDep) -> Response[bytes]:
    """Prometheus text format."""
    metrics.refresh(queen)
    return Response(generate_latest(metrics.REGISTRY), media_type=CONTENT_TYPE_LATEST)


@hookimpl
def rbee_queen_routes() -> list[Any]:
    return [scrape]


@hookimpl
def rbee_job_submitted(job: Job) -> None:
    metrics.observe_submitted(job)


@hookimpl
def rbee_job_finished(job: Job) -> None:
    metrics.observe_finished(job)


@hookimpl
def rbee_narrate(narration: Narration) -> None:
    if narration.action == MODEL_CONVERTED:
        metrics.MODEL_CONVERSIONS.inc()
    elif narration.action == MODEL_DOWNLOADED:
        metrics.MODEL_DOWNLOADS.inc()
