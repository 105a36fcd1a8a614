"""``rbee-keeper jobs list|show|cancel``: the queen's job records."""

from __future__ import annotations

import json
import time

import click

from rbee_keeper.client import QueenClient, fetch_list
from rbee_keeper.context import Keeper, pass_keeper, queen_url_option
from rbee_keeper.infer import follow

__all__ = ["jobs"]


def _when(ts: float | None) -> str:
    return time.strftime("%H:%M:%S", time.localtime(ts)) if ts else "-"


@click.group()
def jobs() -> None:
    """List, inspect or cancel jobs on the queen."""


@jobs.command("list")
@queen_url_option
@click.option("--json", "as_json", is_flag=True, help="Print the records as JSON.")
def list_jobs(queen_url: str, as_json: bool) -> None:
    """One line per job: id, state, model, worker, tokens, submitted."""
    records = fetch_list(queen_url, "/jobs", "jobs", as_json)
    if records is None:
        return
    if not records:
        click.echo("no jobs")
        return
    click.echo(f"{'JOB':<42} {'STATE':<10} {'MODEL':<16} {'TOKENS':>6}  SUBMITTED")
    for r in records:
        click.echo(
            f"{r['job_id']:<42} {r['state']:<10} {r['model']:<16} {r['tokens']:>6}  "
            f"{_when(r['created_at'])}"
        )


@jobs.command()
@click.argument("job_id")
@queen_url_option
def show(job_id: str, queen_url: str) -> None:
    """Print one job's record as JSON."""
    with QueenClient(queen_url) as client:
        click.echo(json.dumps(client.get(f"/jobs/{job_id}"), indent=2))


@jobs.command()
@click.argument("job_id")
@queen_url_option
@pass_keeper
def attach(keeper: Keeper, job_id: str, queen_url: str) -> None:
    """Follow job JOB_ID (from its first event): answer on stdout, narration on stderr."""
    with QueenClient(queen_url) as client:
        follow(keeper, client, {"job_id": job_id, "sse_url": f"/jobs/{job_id}/stream"})


@jobs.command()
@click.argument("job_id")
@queen_url_option
def cancel(job_id: str, queen_url: str) -> None:
    """Cancel a queued or running job."""
    with QueenClient(queen_url) as client:
        record = client.delete(f"/jobs/{job_id}")
    click.echo(f"{job_id}: {record['state']}")
