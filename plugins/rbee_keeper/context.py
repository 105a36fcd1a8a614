"""What every keeper command gets through click's context object."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import click
import pluggy

from rbee_core.narration import Narration
from rbee_core.settings import DEFAULT_QUEEN_URL, QUEEN_URL
from rbee_core.terminal_text import printable

__all__ = [
    "ACTOR",
    "QUEEN_URL_META",
    "TERMINAL",
    "Keeper",
    "backend_option",
    "current_queen_url",
    "pass_keeper",
    "queen_url_option",
]

ACTOR = "rbee-keeper"
QUEEN_URL_ENV = QUEEN_URL.name
# Where a ``--queen-url`` typed before the subcommand (or on any group above it) is kept:
# ``ctx.meta`` is one dict shared by a command's context and all its parents'.
QUEEN_URL_META = "rbee_keeper.queen_url"
TERMINAL = "keeper-terminal"  # the TerminalSink's name in the plugin manager


def current_queen_url() -> str:
    """The queen's URL when a command did not get ``--queen-url`` itself: one given before
    the subcommand, else ``$RBEE_QUEEN_URL``, else the loopback default.

    The environment is read here rather than through click's ``envvar``: click ranks an
    option's environment variable above anything but its own command line, so
    ``RBEE_QUEEN_URL=A rbee-keeper --queen-url B jobs list`` would have gone to A.
    """
    ctx = click.get_current_context(silent=True)
    given = ctx.meta.get(QUEEN_URL_META) if ctx is not None else None
    return str(given or QUEEN_URL.read())


@dataclass
class Keeper:
    pm: pluggy.PluginManager

    @property
    def queen_url(self) -> str:
        """The queen's URL for a command that declares no ``--queen-url`` of its own (a
        third-party plugin's): the keeper gives every command the option."""
        return current_queen_url()

    def set_quiet(self, quiet: bool = True) -> None:
        """No narration on stderr from now on (``-q``, wherever it was typed)."""
        sink = self.pm.get_plugin(TERMINAL)
        if sink is not None:
            sink.quiet = quiet

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
                raise click.ClickException(printable(str(data.get("message"))))
        raise click.ClickException("the operation ended without a result")


pass_keeper = click.make_pass_decorator(Keeper)

queen_url_option = click.option(
    "--queen-url",
    default=current_queen_url,
    metavar="URL",
    help=f"Where the queen listens (default: ${QUEEN_URL_ENV}, else {DEFAULT_QUEEN_URL}); "
    "may also come before the command.",
)

backend_option = click.option(
    "--backend",
    help="Inference backend: torch or llamacpp (default: the best installed for the "
    "model's format, llamacpp for GGUF files).",
)
