"""``rbee-keeper hive list|start|stop`` and ``rbee-keeper worker list|spawn|stop``."""

from __future__ import annotations

import time
from typing import Any

import click

from rbee_core.units import human_bytes
from rbee_keeper.client import QueenClient, fetch_list
from rbee_keeper.context import Keeper, backend_option, pass_keeper, queen_url_option

__all__ = ["hive", "worker"]


def _ago(ts: float | None) -> str:
    return "never" if ts is None else f"{time.time() - ts:.1f} s ago"


def _devices(devices: list[dict[str, Any]]) -> str:
    return ", ".join(
        f"{d['id']} ({human_bytes(d['free_memory'])} free of {human_bytes(d['total_memory'])})"
        for d in devices
    )


@click.group()
def hive() -> None:
    """The machines in the cluster: one rbee-hive on each."""


@hive.command("list")
@queen_url_option
@click.option("--json", "as_json", is_flag=True, help="Print the hives as JSON.")
def list_hives(queen_url: str, as_json: bool) -> None:
    """Each hive: address, state, devices, models, workers, last heartbeat."""
    hives = fetch_list(queen_url, "/hives", "hives", as_json)
    if hives is None:
        return
    if not hives:
        click.echo("no hives yet (the queen starts one on this machine for the first job)")
    for h in hives:
        click.echo(
            f"{h['name']}  {h['state']}  {h['url']}  last heartbeat {_ago(h['last_heartbeat'])}"
        )
        click.echo(f"  devices: {_devices(h['devices']) or 'unknown yet'}")
        click.echo(f"  models:  {', '.join(h['models']) or 'none'}")
        click.echo(f"  workers: {', '.join(w['id'] for w in h['workers']) or 'none'}")


@hive.command()
@click.option("--ssh", "host", help="Start it on HOST through the system ssh client.")
@queen_url_option
def start(host: str | None, queen_url: str) -> None:
    """Start a hive (on this machine, or on --ssh HOST) and wait for its first heartbeat."""
    with QueenClient(queen_url) as client:
        record = client.post("/hives", {"ssh": host} if host else {})
    click.echo(
        f"hive {record['name']} is {record['state']} at {record['url']}: "
        f"{_devices(record['devices'])}"
    )


@hive.command()
@click.argument("name")
@queen_url_option
def stop(name: str, queen_url: str) -> None:
    """Stop hive NAME and every worker it started."""
    with QueenClient(queen_url) as client:
        client.delete(f"/hives/{name}")
    click.echo(f"hive {name} stopped")


@click.group()
def worker() -> None:
    """The workers: one process per loaded model."""


@worker.command("list")
@queen_url_option
@click.option("--json", "as_json", is_flag=True, help="Print the workers as JSON.")
def list_workers(queen_url: str, as_json: bool) -> None:
    """Each worker: id, hive, model, backend and quantisation, device, state, jobs served,
    memory."""
    workers = fetch_list(queen_url, "/workers", "workers", as_json)
    if workers is None:
        return
    if not workers:
        click.echo("no workers")
        return
    click.echo(
        f"{'WORKER':<24} {'HIVE':<12} {'MODEL':<16} {'BACKEND':<15} {'DEVICE':<7} "
        f"{'STATE':<6} {'JOBS':>5} {'MEMORY':>9}"
    )
    for w in workers:
        memory = human_bytes(w["memory"]) if w.get("memory") else "-"
        backend = " ".join(filter(None, (w.get("backend"), w.get("quantization")))) or "-"
        click.echo(
            f"{w['id']:<24} {w['hive']:<12} {w['model']:<16} {backend:<15} {w['device']:<7} "
            f"{w['state']:<6} {w['jobs_served']:>5} {memory:>9}"
        )


@worker.command()
@click.option("--hive", "hive_name", help="The hive to start it on (default: this machine's).")
@click.option("--model", "-m", required=True, help="Model name or reference.")
@click.option("--device", "-d", default="cpu", show_default=True, help="cpu, cuda:0, ...")
@click.option("--keep-alive", type=float, help="Stop it after this many idle seconds.")
@backend_option
@queen_url_option
@pass_keeper
def spawn(
    keeper: Keeper,
    hive_name: str | None,
    model: str,
    device: str,
    keep_alive: float | None,
    backend: str | None,
    queen_url: str,
) -> None:
    """Start a worker for MODEL on a hive's device, ready for jobs."""
    body: dict[str, Any] = {"model": model, "device": device}
    if hive_name:
        body["hive"] = hive_name
    if backend:
        body["backend"] = backend
    if keep_alive is not None:
        body["keep_alive"] = keep_alive
    with QueenClient(queen_url) as client:
        w = keeper.run_operation(client.stream("POST", "/workers", body))["worker"]
    click.echo(
        f"{w['id']} serves {w['model']} on {w['device']} of hive {w['hive']} with "
        f"{w.get('backend', '?')} {w.get('quantization', '')} at {w['url']}"
    )


@worker.command("stop")
@click.argument("worker_id")
@queen_url_option
def stop_worker(worker_id: str, queen_url: str) -> None:
    """Stop worker WORKER_ID."""
    with QueenClient(queen_url) as client:
        client.delete(f"/workers/{worker_id}")
    click.echo(f"worker {worker_id} stopped")
