"""What every keeper command gets through click's context object."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import click
import pluggy

from rbee_core.narration import Narration

__all__ = ["ACTOR", "Keeper", "backend_option", "pass_keeper", "queen_url_option"]

ACTOR = "rbee-keeper"
DEFAULT_QUEEN_URL = "http://127.0.0.1:8500"


@dataclass
class Keeper:
    pm: pluggy.PluginManager

    def narrate(self, action: str, message: str, actor: str = ACTOR) -> None:
        self.pm.hook.rbee_narrate(narration=Narration(actor, action, message))

    def relay(self, data: dict[str, Any], job_id: str | None = None) -> None:
        """Show a narration event that came over a stream."""
        self.pm.hook.rbee_narrate(narration=Narration.from_json(data, job_id))

    def run_operation(self, events: Iterable[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
        """Follow a long operation's stream (a download, a worker start): narration to the
        terminal; its ``end`` data, or its ``error`` as a one-line failure."""
        for event, data in events:
            if event == "narration":
                self.relay(data)
            elif event == "end":
                return data
            elif event == "error":
                raise click.ClickException(str(data.get("message")))
        raise click.ClickException("the operation ended without a result")


pass_keeper = click.make_pass_decorator(Keeper)

queen_url_option = click.option(
    "--queen-url",
    envvar="RBEE_QUEEN_URL",
    default=DEFAULT_QUEEN_URL,
    show_default=True,
    show_envvar=True,
    help="Where the queen listens.",
)

backend_option = click.option(
    "--backend",
    help="Inference backend: torch or llamacpp (default: the best installed for the "
    "model's format, llamacpp for GGUF files).",
)
