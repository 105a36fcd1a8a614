"""``rbee-keeper model list|download|rm|info``."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import click

from rbee_core.units import human_bytes
from rbee_keeper.context import Keeper, pass_keeper, queen_url_option
from rbee_keeper.queen_lifecycle import queen_session
from rbee_keeper.tables import Column, render_table
from rbee_keeper.terminal import echo

__all__ = ["model"]


# A long name (a file: or hf: reference) is shortened in the middle, and the path (last,
# unbounded) is left whole so it can be copied; --json has everything whole.
MODEL_COLUMNS = (
    Column("NAME", 40),
    Column("SOURCE", 8),
    Column("FORMAT", 12),
    Column("SIZE", right=True),
    Column("STATE"),
    Column("HIVE", 16),
    Column("PATH"),
)


def _size(n: int | None) -> str:
    return "-" if n is None else human_bytes(n)


def _query(model_ref: str) -> str:
    return urlencode({"model": model_ref})


@click.group()
def model() -> None:
    """The models on your machines: list, download, inspect, remove.

    MODEL is a catalog name (smollm2-135m) or a reference: file:/path/model.gguf,
    https://host/model.gguf[#sha256=...], hf:ORG/NAME, hf:ORG/NAME:FILE.gguf.
    Starts the queen if none is running, and stops it again afterwards.
    """


@model.command("list")
@queen_url_option
@click.option("--json", "as_json", is_flag=True, help="Print the catalog as JSON.")
@pass_keeper
def list_models(keeper: Keeper, queen_url: str, as_json: bool) -> None:
    """What each hive has: name, source, format, size on disk, state, where."""
    with queen_session(keeper, queen_url) as client:
        answer = client.get("/models")
    if as_json:
        click.echo(json.dumps(answer, indent=2))
        return
    rows = answer["models"]
    if not rows:
        echo(f"no models yet; known names: {', '.join(answer['known'])}")
        return
    table = [
        (
            r["name"],
            r["source"],
            r["format"],
            _size(r["size"]),
            "stale" if r["problem"] else "ready",
            r["hive"],
            str(r["path"]),
        )
        for r in rows
    ]
    for line in render_table(MODEL_COLUMNS, table):
        click.echo(line)
    for r in rows:
        if r["problem"]:
            echo(f"warning: {r['name']}: {r['problem']}", err=True)


@model.command()
@click.argument("model_ref", metavar="MODEL")
@queen_url_option
@pass_keeper
def download(keeper: Keeper, model_ref: str, queen_url: str) -> None:
    """Put MODEL on this machine (with live progress), and record it in the catalog."""
    with queen_session(keeper, queen_url) as client:
        events = client.stream("POST", "/models/download", {"model": model_ref})
        info = keeper.run_operation(events)["model"]
    echo(f"{info['name']}: {info['state']}, {_size(info.get('size'))}, {info.get('path')}")


@model.command()
@click.argument("model_ref", metavar="MODEL")
@queen_url_option
@pass_keeper
def info(keeper: Keeper, model_ref: str, queen_url: str) -> None:
    """Everything the catalog knows about MODEL."""
    with queen_session(keeper, queen_url) as client:
        answer = client.get(f"/models/info?{_query(model_ref)}")
    for key, value in answer.items():
        echo(f"{key}: {_size(value) if key == 'size' else value}")


@model.command()
@click.argument("model_ref", metavar="MODEL")
@queen_url_option
@pass_keeper
def rm(keeper: Keeper, model_ref: str, queen_url: str) -> None:
    """Remove MODEL from the catalog and delete the files rbee downloaded for it."""
    with queen_session(keeper, queen_url) as client:
        entry = client.delete(f"/models?{_query(model_ref)}")
    echo(f"removed {entry['name']} ({_size(entry['size'])})")
