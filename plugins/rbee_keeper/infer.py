"""``rbee-keeper infer``: one prompt in, the answer streamed out.

The prompt is an argument, or stdin when it is piped in (``echo hi | rbee-keeper infer``,
``cat notes.txt | rbee-keeper infer "Summarise this."``). What streams a job to the terminal
(``follow``, ``run_job``) is shared with ``rbee-keeper chat`` and ``jobs attach``.

Tokens go to stdout as the model wrote them when stdout is a pipe or a file (``infer ... >
answer.txt`` keeps the exact answer); on a terminal, without escape sequences and control
characters but newline and tab, so no answer can rewrite the screen.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from rbee_core.terminal_text import printable
from rbee_keeper.context import Keeper, pass_keeper, queen_url_option
from rbee_keeper.job_options import job_fields, job_options
from rbee_keeper.queen_lifecycle import ensure_queen

__all__ = [
    "combine_prompt",
    "follow",
    "follow_as_json",
    "infer",
    "job_events",
    "run_job",
    "sampling_options",
    "stdin_is_piped",
]


def sampling_options(function: Any) -> Any:
    """The options of a job (its fields: model, sampling, placement), shared by ``infer``
    and ``chat``, and how long to wait for a queen the command starts."""
    function = click.option(
        "--queen-timeout",
        type=float,
        default=30.0,
        show_default=True,
        help="Seconds to wait for a queen this command starts.",
    )(function)
    return job_options(function)


def stdin_is_piped() -> bool:
    """Whether stdin brings text (a pipe or a redirected file), as opposed to a terminal or
    nothing at all (``/dev/null``, a closed stdin): only then does ``infer`` read it."""
    try:
        mode = os.fstat(sys.stdin.fileno()).st_mode
    except (OSError, ValueError, AttributeError):
        # No descriptor: an in-memory stream (click's test runner); it is text if it is no
        # terminal.
        return sys.stdin is not None and not sys.stdin.isatty()
    return stat.S_ISFIFO(mode) or stat.S_ISREG(mode)


def combine_prompt(argument: str | None, piped: str | None) -> str | None:
    """The prompt from the PROMPT argument and what stdin brought: the instruction, a blank
    line, then the document (``cat notes.txt | rbee-keeper infer "Summarise this."``)."""
    parts = [p.strip("\n") for p in (argument, piped) if p is not None and p.strip()]
    return "\n\n".join(parts) if parts else None


def _read_prompt(prompt: str | None) -> str:
    if prompt == "-":
        return sys.stdin.read()
    piped = sys.stdin.read() if stdin_is_piped() else None
    if prompt is None and piped is None:
        raise click.UsageError(
            "PROMPT is missing: give it as an argument, or pipe it in "
            "(echo 'hello' | rbee-keeper infer)"
        )
    combined = combine_prompt(prompt, piped)
    if combined is None:
        raise click.UsageError("the prompt is empty (nothing in PROMPT nor on stdin)")
    return combined


@click.command()
@click.argument("prompt", required=False)
@sampling_options
@click.option("--system", help="A system message: how the model should answer.")
@click.option("--raw", is_flag=True, help="Send the prompt as is, without the chat template.")
@click.option(
    "--detach",
    is_flag=True,
    help="Submit, print the job id and exit; follow it with: rbee-keeper jobs attach ID",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help='Print each event of the job\'s stream as one JSON line ({"event": ..., "data": '
    "...}) on stdout, for scripts; nothing else goes to stdout.",
)
@click.option(
    "--json-schema",
    "schema_file",
    type=click.File("r"),
    help="Hold the answer to this JSON Schema (a file; - reads stdin): decoding is "
    "constrained, so the answer always parses and validates.",
)
@queen_url_option
@pass_keeper
def infer(
    keeper: Keeper,
    /,
    prompt: str | None,
    model: str,
    system: str | None,
    raw: bool,
    detach: bool,
    as_json: bool,
    schema_file: Any,
    queen_timeout: float,
    queen_url: str,
    **sampling: Any,
) -> None:
    """Run PROMPT on a model and stream the answer to stdout.

    PROMPT may come on stdin instead: when it is - or left out and stdin is a pipe or a
    file (echo "What is the capital of France?" | rbee-keeper infer). Given both, the
    argument is the instruction and stdin the document: they are sent as the argument, a
    blank line, then stdin (cat notes.txt | rbee-keeper infer "Summarise this."). So a
    script that runs infer with a stdin it does not mean as input (in a while-read loop)
    gives it </dev/null.

    Narration (what rbee is doing) goes to stderr. Starts the queen if none answers at
    --queen-url, and stops it again at the end if it was started here.
    """
    if system is not None and raw:
        raise click.UsageError(
            "--system needs the model's chat template, and --raw sends the prompt without "
            "it: use one or the other"
        )
    schema = _schema(schema_file) if schema_file is not None else None
    text = _read_prompt(prompt)
    job: dict[str, Any] = {"model": model, "prompt": text, "raw": raw, **job_fields(**sampling)}
    if schema is not None:
        name = Path(schema_file.name).stem if schema_file.name != "<stdin>" else "schema"
        job["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": name, "schema": schema},
        }
    if system is not None:
        job["messages"] = [
            {"role": "system", "content": system},
            {"role": "user", "content": text},
        ]

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
        run_job(keeper, queen.client, job, as_json=as_json)
    finally:
        queen.stop(keeper)


def _schema(source: Any) -> dict[str, Any]:
    """The JSON Schema in ``--json-schema``'s file, or a usage error naming the problem."""
    try:
        schema = json.load(source)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(
            f"{source.name} is not JSON: {exc}", param_hint="--json-schema"
        ) from None
    if not isinstance(schema, dict):
        raise click.BadParameter(
            f"{source.name} must hold a JSON Schema object, not {type(schema).__name__}",
            param_hint="--json-schema",
        )
    return schema


def run_job(
    keeper: Keeper,
    client: Any,
    job: dict[str, Any],
    *,
    verbose: bool = True,
    as_json: bool = False,
) -> str:
    """Submit ``job`` and stream it (see ``follow``); its answer. Ctrl-C cancels the job,
    so its worker stops generating and is free again, then goes on as KeyboardInterrupt."""
    submitted = client.submit(job)
    if verbose:
        keeper.narrate("job_submitted", f"job {submitted['job_id']} submitted")
    try:
        if as_json:
            follow_as_json(keeper, client, submitted)
            return ""
        return follow(keeper, client, submitted, verbose=verbose)
    except KeyboardInterrupt:
        if verbose:
            keeper.narrate("job_cancel", f"cancelling job {submitted['job_id']}")
        client.delete(f"/jobs/{submitted['job_id']}")
        raise


def job_events(
    keeper: Keeper, client: Any, submitted: dict[str, str], verbose: bool = True
) -> Iterator[tuple[str, dict[str, Any]]]:
    """A job's events, its stream resumed (and that narrated) when the connection drops."""
    if verbose:
        keeper.narrate(
            "sse_connect", "having a sse connection from the bee keeper to the queen bee"
        )

    def retrying(attempt: int, why: str) -> None:
        keeper.narrate("sse_reconnect", f"{why}; reconnecting ({attempt} of 5)")

    yield from client.events(submitted["sse_url"], on_retry=retrying)


def follow(keeper: Keeper, client: Any, submitted: dict[str, str], *, verbose: bool = True) -> str:
    """Print a job's stream: tokens to stdout, narration to stderr; fail on its error.

    The answer's text is returned. Not ``verbose`` (a chat), the job's narration is left
    out but for progress (a download's bar), and so is the summary at its end.
    """
    parts: list[str] = []
    # On a terminal the model's escape sequences and control characters are not printed
    # (a model can be steered to write them); to a pipe or file the answer stays exact.
    shown = printable if sys.stdout.isatty() else str
    for event, data in job_events(keeper, client, submitted, verbose):
        if event == "token":
            sys.stdout.write(shown(data["text"]))
            sys.stdout.flush()
            parts.append(data["text"])
        elif event == "narration":
            if verbose or data.get("progress") is not None:
                keeper.relay(data, submitted["job_id"])
        elif event == "end":
            if parts:
                sys.stdout.write("\n")
                sys.stdout.flush()
            if verbose:
                keeper.narrate(
                    "job_done",
                    f"done: {data.get('completion_tokens', 0)} tokens, "
                    f"finish reason {data.get('finish_reason')}",
                )
            if data.get("outcome", "completed") != "completed":
                raise click.ClickException(f"the job was {data.get('outcome')}")
            return "".join(parts)
        elif event == "error":
            if parts:
                sys.stdout.write("\n")
                sys.stdout.flush()
            raise click.ClickException(printable(f"the job failed: {data.get('message')}"))
    raise click.ClickException("the job's stream ended without an end event")


def follow_as_json(keeper: Keeper, client: Any, submitted: dict[str, str]) -> None:
    """Print each event of a job's stream as one JSON line on stdout (``--json``): for
    scripts, which read every event (narration included) there. A failed job still exits
    with an error, on stderr."""
    for event, data in job_events(keeper, client, submitted, verbose=False):
        sys.stdout.write(json.dumps({"event": event, "data": data}) + "\n")
        sys.stdout.flush()
        if event == "end":
            if data.get("outcome", "completed") != "completed":
                raise click.ClickException(f"the job was {data.get('outcome')}")
            return
        if event == "error":
            raise click.ClickException(printable(f"the job failed: {data.get('message')}"))
    raise click.ClickException("the job's stream ended without an end event")
