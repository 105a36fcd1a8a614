"""What every keeper command gets through click's context object."""

from __future__ import annotations

from dataclasses import dataclass

import click
import pluggy

from rbee_core.narration import Narration

__all__ = ["ACTOR", "Keeper", "pass_keeper", "queen_url_option"]

ACTOR = "rbee-keeper"
DEFAULT_QUEEN_URL = "http://127.0.0.1:8500"


@dataclass
class Keeper:
    pm: pluggy.PluginManager

    def narrate(self, action: str, message: str, actor: str = ACTOR) -> None:
        self.pm.hook.rbee_narrate(narration=Narration(actor, action, message))


pass_keeper = click.make_pass_decorator(Keeper)

queen_url_option = click.option(
    "--queen-url",
    envvar="RBEE_QUEEN_URL",
    default=DEFAULT_QUEEN_URL,
    show_default=True,
    show_envvar=True,
    help="Where the queen listens.",
)
