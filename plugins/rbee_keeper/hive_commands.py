"""``rbee-keeper hive list|install|start|stop`` and ``rbee-keeper worker list|spawn|stop``."""

from __future__ import annotations

import importlib.metadata
import time
from typing import Any
from urllib.parse import urlsplit

import click

from rbee_core.addresses import is_loopback_host, is_unspecified
from rbee_core.credentials import API_KEY_ENV, api_key
from rbee_core.plugins import model_catalog
from rbee_core.units import human_bytes
from rbee_keeper.client import QueenClient, fetch_list
from rbee_keeper.context import Keeper, backend_option, pass_keeper, queen_url_option
from rbee_keeper.tables import Column, render_table
from rbee_keeper.terminal import echo

__all__ = ["hive", "worker"]


def _ago(ts: float | None) -> str:
    return "never" if ts is None else f"{time.time() - ts:.1f} s ago"


def _devices(devices: list[dict[str, Any]]) -> str:
    return ", ".join(
        f"{d['id']} ({human_bytes(d['free_memory'])} free of {human_bytes(d['total_memory'])})"
        for d in devices
    )


def _backends(hive: dict[str, Any]) -> str:
    """``llamacpp (cpu), torch (cpu, cuda:0)``: each backend and the devices it runs on."""
    runs_on = hive.get("backend_devices") or {}
    return ", ".join(
        f"{name} ({', '.join(runs_on[name]) or 'no device'})" if name in runs_on else name
        for name in sorted(hive.get("backends") or {})
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
        echo("no hives yet (the queen starts one on this machine for the first job)")
    for h in hives:
        echo(f"{h['name']}  {h['state']}  {h['url']}  last heartbeat {_ago(h['last_heartbeat'])}")
        echo(f"  devices: {_devices(h['devices']) or 'unknown yet'}")
        echo(f"  backends: {_backends(h) or 'unknown yet'}")
        echo(f"  models:  {', '.join(h['models']) or 'none'}")
        echo(f"  workers: {', '.join(w['id'] for w in h['workers']) or 'none'}")
        for part in h.get("parts") or []:
            memory = f", {human_bytes(part['memory'])}" if part.get("memory") else ""
            echo(
                f"  part:    {part['layers']} layers of {part['model']} for the worker on hive "
                f"{part['for_hive']}{memory}"
            )
        if h.get("labels"):
            echo("  labels:  " + ", ".join(f"{k}={v}" for k, v in h["labels"].items()))
        if h.get("problem"):
            echo(f"  problem: {h['problem']}")


ssh_option = click.option(
    "--ssh",
    "host",
    metavar="[USER@]HOST",
    help="The other machine, as your ssh client knows it (user@host, or a Host of your "
    "~/.ssh/config). RBEE_SSH_COMMAND replaces the ssh command, e.g. 'ssh -F FILE'.",
)
ssh_port_option = click.option("--ssh-port", type=int, help="ssh's port on HOST (default: 22).")


@hive.command()
@ssh_option
@ssh_port_option
@click.option(
    "--python",
    default="python3",
    show_default=True,
    help="Python on HOST (its version must be this installation's).",
)
@pass_keeper
def install(keeper: Keeper, host: str | None, ssh_port: int | None, python: str) -> None:
    """Put this rbee installation on another machine, ready for `hive start --ssh HOST`.

    Builds wheels of everything installed here that rbee needs (cached for next time), copies
    those HOST lacks over ssh, and installs them with the default model's package into a new
    venv in HOST's rbee data dir (~/.local/share/rbee/venv). HOST needs no package index and
    compiles nothing; it needs the same Python version and CPU architecture as this machine.
    """
    # ssh and packing wheels take tarfile, packaging, zipfile and more: imported by the two
    # commands that use them, not by every keeper start.
    from rbee_keeper import remote_hive
    from rbee_keeper.ssh import Ssh, SshFailed
    from rbee_keeper.wheels import WheelError

    if not host:
        raise click.UsageError("give the machine to install on: --ssh [USER@]HOST")
    catalog = model_catalog(keeper.pm)
    models = sorted(
        {
            ref.removeprefix("pypi:").partition("/")[0]
            for ref in catalog.aliases.values()
            if ref.startswith("pypi:")
        }
    )
    models = [m for m in models if _installed(m)]
    ssh = Ssh(host, ssh_port)
    started = time.monotonic()
    try:
        done = remote_hive.install(ssh, models, python, lambda m: keeper.narrate("install", m))
    except (remote_hive.RemoteError, SshFailed, WheelError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"rbee is installed on {host} in {done.venv} ({done.wheels} wheels, "
        f"{human_bytes(done.copied)} copied, {time.monotonic() - started:.0f} s); "
        f"start it with: rbee-keeper hive start --ssh {host}"
    )


def _installed(name: str) -> bool:
    try:
        importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


@hive.command()
@ssh_option
@ssh_port_option
@click.option("--name", help="The hive's name (default: HOST without its user@).")
@click.option("--port", type=int, default=8600, show_default=True, help="The hive's port on HOST.")
@click.option(
    "--remote-command",
    metavar="PATH",
    help="rbee-hive on HOST, for an rbee you installed there yourself (default: the one "
    "hive install put there, else rbee-hive on ssh's PATH).",
)
@click.option(
    "--advertise-url",
    help="The URL the queen reaches the hive at (default: HOST's address on its route to "
    "the queen).",
)
@click.option(
    "--hive-queen-url",
    help="The queen's URL as HOST reaches it (default: --queen-url, or for a queen on this "
    "machine listening on every address, this machine's address as HOST sees it).",
)
@click.option(
    "--heartbeat", type=float, default=2.0, show_default=True, help="Seconds between heartbeats."
)
@queen_url_option
@pass_keeper
def start(
    keeper: Keeper,
    host: str | None,
    ssh_port: int | None,
    name: str | None,
    port: int,
    remote_command: str | None,
    advertise_url: str | None,
    hive_queen_url: str | None,
    heartbeat: float,
    queen_url: str,
) -> None:
    """Start a hive, on this machine or on another (--ssh HOST), and wait until it is ready.

    On HOST the hive listens on every address, so the cluster's API key is required
    (RBEE_API_KEY, the queen's); it reaches the hive on ssh's stdin, never a command line.
    The hive's log is in HOST's rbee state dir; `hive stop NAME` stops it.
    """
    from rbee_keeper import remote_hive
    from rbee_keeper.ssh import Ssh, SshFailed

    if not host:
        for option, value in (("--ssh-port", ssh_port), ("--remote-command", remote_command)):
            if value is not None:
                raise click.UsageError(f"{option} goes with --ssh HOST")
        with QueenClient(queen_url) as client:
            record = client.post("/hives", {})
        echo(
            f"hive {record['name']} is {record['state']} at {record['url']}: "
            f"{_devices(record['devices'])}"
        )
        return
    key = api_key()
    if not key:
        raise click.ClickException(
            f"a hive on {host} listens beyond loopback, which needs the cluster's API key: "
            f"set {API_KEY_ENV} to the queen's key"
        )
    name = name or host.rpartition("@")[2]
    with QueenClient(queen_url) as client:
        health = client.health()
        if health is None:
            raise click.ClickException(
                f"no queen answers at {queen_url}; start one that {host} can reach, e.g. "
                f"`queen-rbee --host 0.0.0.0 --api-key-file PATH`"
            )
        target = hive_queen_url or _queen_for(host, queen_url, str(health.get("url", "")))
        script = remote_hive.start_script(
            name=name,
            queen_url=target,
            queen_port=urlsplit(queen_url).port or 8500,
            port=port,
            heartbeat=heartbeat,
            remote_command=remote_command,
            advertise_url=advertise_url,
        )
        keeper.narrate("hive_start", f"starting hive {name} on {host} through ssh")
        try:
            done = Ssh(host, ssh_port).run(script, stdin=f"{key}\n".encode(), timeout=90)
        except SshFailed as exc:
            raise click.ClickException(str(exc)) from None
        if done.returncode != 0:
            raise click.ClickException(
                f"the hive on {host} did not start (code {done.returncode}): "
                f"{(done.stderr or done.stdout).strip()}"
            )
        keeper.narrate("hive_started", done.stdout.strip())
        record = _wait_ready(client, name, 30.0)
    echo(f"hive {name} is ready at {record['url']}: {_devices(record['devices'])}")


def _queen_for(host: str, queen_url: str, listening: str) -> str | None:
    """The queen's URL for a hive on ``host``: the keeper's, unless that is loopback; then,
    for a queen on every address, ``None`` (the address the ssh connection came from)."""
    if not is_loopback_host(urlsplit(queen_url).hostname or ""):
        return queen_url
    where = urlsplit(listening).hostname or ""
    if is_unspecified(where):
        return None
    if is_loopback_host(where):
        click.echo(
            f"warning: the queen listens on {where} only, which a hive on {host} cannot "
            "reach; restart it on an address the hive reaches, e.g. `queen-rbee --host "
            "0.0.0.0 --api-key-file PATH`, or pass --hive-queen-url",
            err=True,
        )
        return queen_url
    return listening


def _wait_ready(client: QueenClient, name: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    record: dict[str, Any] = {}
    while time.monotonic() < deadline:
        record = next((h for h in client.get("/hives")["hives"] if h["name"] == name), {})
        if record.get("state") == "ready":
            return record
        time.sleep(0.2)
    why = record.get("problem") or f"it is {record.get('state', 'not registered')}"
    raise click.ClickException(f"hive {name} joined but is not ready after {timeout:.0f} s: {why}")


@hive.command()
@click.argument("name")
@click.option(
    "--drain",
    is_flag=True,
    help="first move the jobs running on NAME to other hives, where they go on without an "
    "error (no new job goes to NAME): to reboot a machine under load",
)
@queen_url_option
def stop(name: str, drain: bool, queen_url: str) -> None:
    """Stop hive NAME and every worker it started."""
    with QueenClient(queen_url) as client:
        if drain:
            click.echo(f"draining hive {name}: its jobs move to other hives", err=True)
        client.delete(f"/hives/{name}?drain=true" if drain else f"/hives/{name}")
    click.echo(f"hive {name} stopped")


# A long model reference (a file: path) is shortened in the middle; --json has it whole.
WORKER_COLUMNS = (
    Column("WORKER", 24),
    Column("HIVE", 16),
    Column("MODEL", 36),
    Column("BACKEND", 16),
    Column("DEVICE", 8),
    Column("STATE"),
    Column("JOBS", right=True),
    Column("MEMORY", right=True),
    Column("SPLIT"),  # a model split across hives: the layers the others hold
)


@click.group()
def worker() -> None:
    """The workers: one process per loaded model."""


def _parts(worker: dict[str, Any]) -> str:
    """``13 layers on hive h2``: where the rest of a split worker's model is (``-``: none)."""
    parts = worker.get("parts") or []
    return ", ".join(f"{n} layers on hive {h}" for h, n in parts) or "-"


@worker.command("list")
@queen_url_option
@click.option("--json", "as_json", is_flag=True, help="Print the workers as JSON.")
def list_workers(queen_url: str, as_json: bool) -> None:
    """Each worker: id, hive, model, backend and quantisation, device (and, for a model split
    across hives, the layers each other hive holds), state, jobs served, memory."""
    workers = fetch_list(queen_url, "/workers", "workers", as_json)
    if workers is None:
        return
    if not workers:
        click.echo("no workers")
        return
    rows = [
        (
            w["id"],
            w["hive"],
            w["model"],
            " ".join(filter(None, (w.get("backend"), w.get("quantization")))) or "-",
            w["device"],
            w["state"],
            str(w["jobs_served"]),
            human_bytes(w["memory"]) if w.get("memory") else "-",
            _parts(w),
        )
        for w in workers
    ]
    for line in render_table(WORKER_COLUMNS, rows):
        click.echo(line)


@worker.command()
@click.option("--hive", "hive_name", help="The hive to start it on (default: this machine's).")
@click.option("--model", "-m", required=True, help="Model name or reference.")
@click.option("--device", "-d", default="cpu", show_default=True, help="cpu, cuda:0, ...")
@click.option(
    "--keep-alive",
    type=float,
    help="Stop it after this many idle seconds; -1 keeps it loaded, never unloaded to make "
    "room for another model.",
)
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
