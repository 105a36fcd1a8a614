"""``rbee-keeper model list|download|rm|info``."""

from __future__ import annotations

import json
from typing import Any

import click

from rbee_core.narration import Narration
from rbee_core.units import human_bytes
from rbee_keeper.context import Keeper, pass_keeper, queen_url_option
from rbee_keeper.queen_lifecycle import ensure_queen

__all__ = ["model"]


def _size(n: int | None) -> str:
    return "-" if n is None else human_bytes(n)


@click.group()
def model() -> None:
    """The models on your machines: list, download, inspect, remove.

    MODEL is a catalog name (smollm2-135m) or a reference: file:/path/model.gguf,
    https://host/model.gguf[#sha256=...], hf:ORG/NAME, hf:ORG/NAME:FILE.gguf.
    Starts the queen if none is running, and stops it again afterwards.
    """


def _with_queen(keeper: Keeper, queen_url: str) -> Any:
    return ensure_queen(keeper, queen_url)


@model.command("list")
@queen_url_option
@click.option("--json", "as_json", is_flag=True, help="Print the catalog as JSON.")
@pass_keeper
def list_models(keeper: Keeper, queen_url: str, as_json: bool) -> None:
    """What each hive has: name, source, format, size on disk, state, where."""
    queen = _with_queen(keeper, queen_url)
    try:
        answer = queen.client.get("/models")
    finally:
        queen.stop(keeper)
    if as_json:
        click.echo(json.dumps(answer, indent=2))
        return
    rows = answer["models"]
    if not rows:
        click.echo(f"no models yet; known names: {', '.join(answer['known'])}")
        return
    click.echo(
        f"{'NAME':<28} {'SOURCE':<7} {'FORMAT':<12} {'SIZE':>9}  {'STATE':<7} {'HIVE':<10} PATH"
    )
    for r in rows:
        state = "stale" if r["problem"] else "ready"
        click.echo(
            f"{r['name']:<28} {r['source']:<7} {r['format']:<12} {_size(r['size']):>9}  "
            f"{state:<7} {r['hive']:<10} {r['path']}"
        )
    for r in rows:
        if r["problem"]:
            click.echo(f"warning: {r['name']}: {r['problem']}", err=True)


@model.command()
@click.argument("model_ref", metavar="MODEL")
@queen_url_option
@pass_keeper
def download(keeper: Keeper, model_ref: str, queen_url: str) -> None:
    """Put MODEL on this machine (with live progress), and record it in the catalog."""
    queen = _with_queen(keeper, queen_url)
    try:
        for event, data in queen.client.stream("POST", "/models/download", {"model": model_ref}):
            if event == "narration":
                keeper.pm.hook.rbee_narrate(
                    narration=Narration(
                        data["actor"],
                        data["action"],
                        data["message"],
                        progress=data.get("progress"),
                    )
                )
            elif event == "end":
                info = data["model"]
                click.echo(
                    f"{info['name']}: {info['state']}, {_size(info.get('size'))}, "
                    f"{info.get('path')}"
                )
            elif event == "error":
                raise click.ClickException(data["message"])
    finally:
        queen.stop(keeper)


@model.command()
@click.argument("model_ref", metavar="MODEL")
@queen_url_option
@pass_keeper
def info(keeper: Keeper, model_ref: str, queen_url: str) -> None:
    """Everything the catalog knows about MODEL."""
    queen = _with_queen(keeper, queen_url)
    try:
        answer = queen.client.get(f"/models/info?{_query(model_ref)}")
    finally:
        queen.stop(keeper)
    for key, value in answer.items():
        click.echo(f"{key}: {_size(value) if key == 'size' else value}")


@model.command()
@click.argument("model_ref", metavar="MODEL")
@queen_url_option
@pass_keeper
def rm(keeper: Keeper, model_ref: str, queen_url: str) -> None:
    """Remove MODEL from the catalog and delete the files rbee downloaded for it."""
    queen = _with_queen(keeper, queen_url)
    try:
        entry = queen.client.delete(f"/models?{_query(model_ref)}")
    finally:
        queen.stop(keeper)
    click.echo(f"removed {entry['name']} ({_size(entry['size'])})")


def _query(model_ref: str) -> str:
    from urllib.parse import urlencode

    return urlencode({"model": model_ref})
