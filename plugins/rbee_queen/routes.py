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
from rbee_core.errors import InvalidRequest
from rbee_core.job_request import JobRequest
from rbee_core.jobs import JobState
from rbee_http.auth import authorized
from rbee_http.sse import last_event_id, read_json, sse_response
from rbee_queen.dependencies import QueenDep
from rbee_queen.job_store import DEFAULT_PAGE, MAX_PAGE
from rbee_queen.openapi import LIST_PARAMETERS, ListJobsOperation, SubmitJobOperation

__all__ = ["ROUTES"]

STATES = [state.value for state in JobState]


@get("/health")
async def health(request: Request[Any, Any, Any], queen: QueenDep) -> dict[str, Any]:
    if not authorized(request):  # public: alive, and nothing more, without the key
        return {"status": "ok"}
    return {
        "status": "ok",
        "version": __version__,
        "pid": os.getpid(),
        "jobs": queen.store.count,  # on record, live or finished
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


@get("/jobs", operation_class=ListJobsOperation)
async def list_jobs(request: Request[Any, Any, Any], queen: QueenDep) -> dict[str, Any]:
    """A page of job records, newest first, and the cursor of the next page (docs/api.md)."""
    query = request.query_params
    for name in query:
        if name not in LIST_PARAMETERS:
            raise InvalidRequest(
                f"unknown parameter {name!r}; allowed: {', '.join(LIST_PARAMETERS)}", field=name
            )
    limit = _limit(query.get("limit"))
    state = _text(query, "state")
    if state is not None and state not in STATES:
        raise InvalidRequest(
            f"state must be one of {', '.join(STATES)}, got {state!r}", field="state"
        )
    records, cursor = queen.store.page(
        limit, before=_text(query, "before"), state=state, model=_text(query, "model")
    )
    # A live job's record on disk lags its tokens: the one in memory is current.
    live = (queen.jobs.in_memory(r["job_id"]) for r in records)
    jobs = [job.summary() if job else r for job, r in zip(live, records, strict=True)]
    return {"jobs": jobs, "next": cursor}


def _text(query: Any, name: str) -> str | None:
    value: str | None = query.get(name)
    if value is None:
        return None
    if not value or len(value) > 4096 or not value.isprintable():
        raise InvalidRequest(f"{name} must be a short non-empty text, got {value[:80]!r}", name)
    return value


def _limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_PAGE
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_PAGE:
        raise InvalidRequest(
            f"limit must be a whole number from 1 to {MAX_PAGE}, got {raw[:80]!r}",
            field="limit",
            minimum=1,
            maximum=MAX_PAGE,
        )
    return int(raw)


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
