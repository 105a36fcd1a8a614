"""``rbee-keeper infer``: one prompt in, the answer streamed out."""

from __future__ import annotations

import sys
from typing import Any

import click

from rbee_core.defaults import DEFAULT_MAX_TOKENS, DEFAULT_TEMPERATURE
from rbee_keeper.context import Keeper, backend_option, pass_keeper, queen_url_option
from rbee_keeper.queen_lifecycle import ensure_queen

__all__ = ["follow", "infer"]


@click.command()
@click.argument("prompt")
@click.option(
    "--model",
    "-m",
    default="smollm2-135m",
    show_default=True,
    help="Model name or reference (e.g. smollm2-135m, file:/path/to/model).",
)
@click.option(
    "--max-tokens",
    type=int,
    default=DEFAULT_MAX_TOKENS,
    show_default=True,
    help="Most tokens to generate.",
)
@click.option(
    "--temperature",
    type=float,
    default=DEFAULT_TEMPERATURE,
    show_default=True,
    help="Sampling temperature; 0 means greedy (deterministic).",
)
@click.option("--top-p", type=float, default=None, help="Nucleus sampling: keep this mass.")
@click.option("--top-k", type=int, default=None, help="Sample from the k likeliest tokens.")
@click.option("--seed", type=int, default=None, help="Seed for reproducible sampling.")
@click.option("--stop", multiple=True, help="Stop when this text appears (repeatable).")
@click.option("--raw", is_flag=True, help="Send the prompt as is, without the chat template.")
@click.option("--timeout", type=float, help="Fail the job if it has not finished in SECONDS.")
@click.option(
    "--detach",
    is_flag=True,
    help="Submit, print the job id and exit; follow it with: rbee-keeper jobs attach ID",
)
@click.option("--hive", help="Run on this hive (see: rbee-keeper hive list).")
@click.option("--device", help="Run on this device of the hive: cpu, cuda:0, ...")
@backend_option
@click.option(
    "--keep-alive",
    type=float,
    help="Seconds a worker started for this job may stay idle (default: the hive's).",
)
@click.option(
    "--queen-timeout",
    type=float,
    default=30.0,
    show_default=True,
    help="Seconds to wait for a queen this command starts.",
)
@queen_url_option
@pass_keeper
def infer(
    keeper: Keeper,
    prompt: str,
    model: str,
    max_tokens: int,
    temperature: float,
    top_p: float | None,
    top_k: int | None,
    seed: int | None,
    stop: tuple[str, ...],
    raw: bool,
    timeout: float | None,
    detach: bool,
    hive: str | None,
    device: str | None,
    backend: str | None,
    keep_alive: float | None,
    queen_timeout: float,
    queen_url: str,
) -> None:
    """Run PROMPT on a model and stream the answer to stdout.

    Narration (what rbee is doing) goes to stderr. Starts the queen if none answers at
    --queen-url, and stops it again at the end if it was started here.
    """
    job: dict[str, Any] = {
        "model": model,
        "prompt": prompt,
        "max_tokens": max_tokens,
        "temperature": temperature,
        "raw": raw,
    }
    optional = {
        "top_p": top_p,
        "top_k": top_k,
        "seed": seed,
        "stop": list(stop) or None,
        "hive": hive,
        "device": device,
        "backend": backend,
        "keep_alive": keep_alive,
        "timeout": timeout,
    }
    job.update({k: v for k, v in optional.items() if v is not None})

    queen = ensure_queen(keeper, queen_url, queen_timeout)
    if detach:
        submitted = queen.client.submit(job)
        click.echo(submitted["job_id"])
        keeper.narrate(
            "job_detached",
            f"detached; follow it with: rbee-keeper jobs attach {submitted['job_id']}",
        )
        if queen.started_here:
            keeper.narrate("queen_left", "the queen keeps running for this job")
        return
    try:
        _run(keeper, queen.client, job)
    finally:
        queen.stop(keeper)


def _run(keeper: Keeper, client: Any, job: dict[str, Any]) -> None:
    submitted = client.submit(job)
    keeper.narrate("job_submitted", f"job {submitted['job_id']} submitted")
    try:
        follow(keeper, client, submitted)
    except KeyboardInterrupt:
        # Ctrl-C: cancel the job, so its worker stops generating and is free again.
        keeper.narrate("job_cancel", f"cancelling job {submitted['job_id']}")
        client.delete(f"/jobs/{submitted['job_id']}")
        raise


def follow(keeper: Keeper, client: Any, submitted: dict[str, str]) -> None:
    """Print a job's stream: tokens to stdout, narration to stderr; fail on its error."""
    keeper.narrate("sse_connect", "having a sse connection from the bee keeper to the queen bee")
    wrote_text = False

    def retrying(attempt: int, why: str) -> None:
        keeper.narrate("sse_reconnect", f"{why}; reconnecting ({attempt} of 5)")

    for event, data in client.events(submitted["sse_url"], on_retry=retrying):
        if event == "token":
            sys.stdout.write(data["text"])
            sys.stdout.flush()
            wrote_text = True
        elif event == "narration":
            keeper.relay(data, submitted["job_id"])
        elif event == "end":
            if wrote_text:
                sys.stdout.write("\n")
                sys.stdout.flush()
            keeper.narrate(
                "job_done",
                f"done: {data.get('completion_tokens', 0)} tokens, "
                f"finish reason {data.get('finish_reason')}",
            )
            if data.get("outcome", "completed") != "completed":
                raise click.ClickException(f"the job was {data.get('outcome')}")
            return
        elif event == "error":
            if wrote_text:
                sys.stdout.write("\n")
            raise click.ClickException(f"the job failed: {data.get('message')}")
