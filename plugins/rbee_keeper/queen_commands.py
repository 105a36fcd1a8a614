"""``rbee-keeper queen start|stop|status``."""

from __future__ import annotations

import time

import click

from rbee_keeper.client import QueenClient
from rbee_keeper.context import Keeper, pass_keeper, queen_url_option
from rbee_keeper.queen_lifecycle import is_loopback, start_queen

__all__ = ["queen"]


@click.group()
def queen() -> None:
    """Start, stop or check the queen (the orchestrator daemon)."""


@queen.command()
@queen_url_option
@click.option(
    "--timeout",
    type=float,
    default=30.0,
    show_default=True,
    help="Seconds to wait for it to become healthy.",
)
@pass_keeper
def start(keeper: Keeper, queen_url: str, timeout: float) -> None:
    """Start a queen that keeps running after this command (and keeps its workers loaded)."""
    with QueenClient(queen_url) as client:
        if client.health() is not None:
            click.echo(f"the queen is already running at {queen_url}")
            return
        if not is_loopback(queen_url):
            raise click.ClickException(f"can start a queen only on this machine, not {queen_url}")
        process = start_queen(keeper, client, timeout)
        click.echo(f"queen-rbee is running at {queen_url} (pid {process.pid})")


@queen.command()
@queen_url_option
@click.option(
    "--timeout", type=float, default=30.0, show_default=True, help="Seconds to wait for it to stop."
)
def stop(queen_url: str, timeout: float) -> None:
    """Stop the queen and every hive and worker it started."""
    with QueenClient(queen_url) as client:
        if client.health() is None:
            click.echo(f"no queen is running at {queen_url}")
            return
        client.shutdown()
        deadline = time.monotonic() + timeout
        while client.health(timeout=0.5) is not None:
            if time.monotonic() > deadline:
                raise click.ClickException(f"the queen at {queen_url} did not stop in {timeout} s")
            time.sleep(0.1)
        click.echo(f"the queen at {queen_url} has stopped")


@queen.command()
@queen_url_option
def status(queen_url: str) -> None:
    """Say whether a queen answers at --queen-url (exit code 1 if not)."""
    with QueenClient(queen_url) as client:
        health = client.health()
    if health is None:
        click.echo(f"no queen is running at {queen_url}")
        raise SystemExit(1)
    if "pid" not in health:  # a keyed queen tells one without the key only that it is up
        click.echo(f"queen-rbee is running at {queen_url} (set the API key for its details)")
        return
    click.echo(
        f"queen-rbee {health['version']} is running at {queen_url} "
        f"(pid {health['pid']}, {health['jobs']} jobs)"
    )
