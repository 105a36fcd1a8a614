"""``rbee-keeper jobs list|show|cancel``: the queen's job records."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import click

from rbee_keeper.client import QueenClient
from rbee_keeper.context import Keeper, pass_keeper, queen_url_option
from rbee_keeper.infer import follow
from rbee_keeper.tables import Column, render_table

__all__ = ["jobs"]


def _when(ts: float | None) -> str:
    """The time of day for today's jobs; the date too for older ones (records last a week)."""
    if not ts:
        return "-"
    today = time.strftime("%Y-%m-%d") == time.strftime("%Y-%m-%d", time.localtime(ts))
    return time.strftime("%H:%M:%S" if today else "%Y-%m-%d %H:%M", time.localtime(ts))


@click.group()
def jobs() -> None:
    """List, inspect or cancel jobs on the queen."""


STATES = ["queued", "running", "completed", "failed", "cancelled"]
PAGE = 1000  # the queen's largest page: --all reads the history in as few requests as it can
COLUMNS = [
    Column("JOB"),
    Column("STATE"),
    Column("MODEL", max_width=40),
    Column("TOKENS", right=True),
    Column("SUBMITTED"),
]


def _pages(client: QueenClient, query: dict[str, Any], every: bool) -> Iterator[dict[str, Any]]:
    """The queen's answers to ``GET /jobs``, following ``next`` while ``every``."""
    while True:
        page: dict[str, Any] = client.get("/jobs" + (f"?{urlencode(query)}" if query else ""))
        yield page
        if not every or not page.get("next"):
            return
        query = query | {"before": page["next"]}


@jobs.command("list")
@queen_url_option
@click.option(
    "--limit",
    type=click.IntRange(1, PAGE),
    help="Show at most this many jobs, newest first (the queen's default: 50).",
)
@click.option("--state", type=click.Choice(STATES), help="Only jobs in this state.")
@click.option("--model", help="Only jobs for this model (as the job named it).")
@click.option("--all", "every", is_flag=True, help="Every job on record, page after page.")
@click.option("--json", "as_json", is_flag=True, help="Print the records as JSON.")
def list_jobs(
    queen_url: str,
    limit: int | None,
    state: str | None,
    model: str | None,
    every: bool,
    as_json: bool,
) -> None:
    """One line per job, newest first: id, state, model, tokens, submitted."""
    query: dict[str, Any] = {"limit": PAGE if every else limit, "state": state, "model": model}
    query = {k: v for k, v in query.items() if v is not None}
    records: list[dict[str, Any]] = []
    more = False
    with QueenClient(queen_url) as client:
        for page in _pages(client, query, every):
            records.extend(page["jobs"])
            more = bool(page.get("next"))
    if as_json:
        click.echo(json.dumps(records, indent=2))
        return
    if not records:
        click.echo("no jobs")
        return
    rows = [
        [r["job_id"], r["state"], r["model"], str(r["tokens"]), _when(r["created_at"])]
        for r in records
    ]
    for line in render_table(COLUMNS, rows):
        click.echo(line)
    if more:
        click.echo("(older jobs not shown: --limit N for more, --all for every one)", err=True)


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
