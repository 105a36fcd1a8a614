"""Submitting jobs to the scenario's queen the way every step file does: the default
model, the scenario's API key when it has one."""

from __future__ import annotations

import subprocess
from typing import Any

import httpx

from steps.support import processes

__all__ = ["DEFAULT_MODEL", "assert_listed", "auth", "post_job", "submit"]

DEFAULT_MODEL = "smollm2-135m"


def auth(context: Any) -> dict[str, str]:
    """The scenario's API key as a header, if it set one."""
    key = context.env.get("RBEE_API_KEY")
    return {"Authorization": f"Bearer {key}"} if key else {}


def post_job(context: Any, **fields: Any) -> httpx.Response:
    """``POST /jobs`` with the default model unless ``fields`` names one; the answer as is."""
    body = {"model": DEFAULT_MODEL, **fields}
    return httpx.post(f"{context.queen_url}/jobs", json=body, headers=auth(context), timeout=30)


def submit(context: Any, **fields: Any) -> dict[str, Any]:
    """``post_job``, which must be accepted: ``{"job_id", "sse_url"}``."""
    response = post_job(context, **fields)
    assert response.status_code == 201, response.text
    job: dict[str, Any] = response.json()
    return job


def assert_listed(context: Any, job_id: str, state: str) -> None:
    """``rbee-keeper jobs list`` shows job ``job_id`` in ``state``."""
    result = subprocess.run(
        [*processes.command("rbee-keeper"), "jobs", "list", "--queen-url", context.queen_url],
        env=context.env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    line = next((line for line in result.stdout.splitlines() if job_id in line), "")
    assert f" {state} " in line, result.stdout
