"""The queen's HTTP API (docs/api.md), contributed through ``rbee_queen_routes`` like any
plugin's routes."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from litestar import Request, delete, get, post
from litestar.datastructures import State
from litestar.params import FromPath
from litestar.response import Stream

from rbee_core import __version__
from rbee_core.jobs import JobRequest
from rbee_http.sse import last_event_id, read_json, sse_response
from rbee_queen.dependencies import QueenDep
from rbee_queen.openapi import SubmitJobOperation

__all__ = ["ROUTES"]


@get("/health")
async def health(queen: QueenDep) -> dict[str, Any]:
    return {
        "status": "ok",
        "version": __version__,
        "pid": os.getpid(),
        "jobs": len(queen.jobs),
        "url": queen.url,  # where it listens: hive start --ssh tells a remote hive from it
    }


@post("/jobs", status_code=201, operation_class=SubmitJobOperation)
async def submit_job(request: Request[Any, Any, Any], queen: QueenDep) -> dict[str, str]:
    """Accept a job; answer its id and the URL of its event stream."""
    job = queen.submit(JobRequest.from_json(await read_json(request)))
    # Let the job's task place it and send its prompt before this answer is written: the
    # prompt then reaches the worker a write earlier, and the client's next request (its
    # stream) waits for nothing that matters.
    await asyncio.sleep(0)
    return {"job_id": job.id, "sse_url": job.sse_url}


@get("/jobs")
async def list_jobs(queen: QueenDep) -> dict[str, Any]:
    return {"jobs": [job.summary() for job in queen.jobs]}


@get("/jobs/{job_id:str}")
async def job_status(job_id: FromPath[str], queen: QueenDep) -> dict[str, Any]:
    return queen.jobs.get(job_id).summary()


@get("/jobs/{job_id:str}/stream")
async def job_stream(
    job_id: FromPath[str], request: Request[Any, Any, Any], queen: QueenDep
) -> Stream:
    """The job's events from the first (or after ``Last-Event-ID``), then ``[DONE]``."""
    job = queen.jobs.get(job_id)
    after = last_event_id(request)
    return sse_response(job.log, after=after, on_close=queen.listening(job))


@delete("/jobs/{job_id:str}", status_code=200)
async def cancel_job(job_id: FromPath[str], queen: QueenDep) -> dict[str, Any]:
    """Cancel a queued or running job; answers its record (a finished job is unchanged)."""
    return (await queen.cancel(job_id)).summary()


@post("/shutdown", status_code=202)
async def shutdown(state: State) -> dict[str, str]:
    """Stop the queen, and with it every hive and worker it started."""
    state.stop()
    return {"status": "shutting down"}


ROUTES = [health, submit_job, list_jobs, job_status, job_stream, cancel_job, shutdown]
