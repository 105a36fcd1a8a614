"""The ``rbee-keeper`` entry point: a click group whose commands come from plugins."""

from __future__ import annotations

import sys

import click
import pluggy

from rbee_core import __version__
from rbee_core.plugins import create_plugin_manager
from rbee_keeper.context import Keeper
from rbee_keeper.terminal import TerminalSink

__all__ = ["build_cli", "main"]


def build_cli() -> tuple[click.Group, Keeper]:
    @click.group(context_settings={"help_option_names": ["-h", "--help"]})
    @click.version_option(__version__, prog_name="rbee-keeper")
    @click.option("--quiet", "-q", is_flag=True, help="No narration on stderr.")
    @click.pass_context
    def cli(ctx: click.Context, quiet: bool) -> None:
        """rbee: the machines you own as one LLM inference cluster.

        Tokens go to stdout, narration (what rbee is doing) to stderr.
        """
        sink.quiet = quiet

    pm = create_plugin_manager("keeper")
    sink = TerminalSink()
    pm.register(sink, name="keeper-terminal")
    pm.hook.rbee_keeper_commands(cli=cli)
    return cli, Keeper(pm)


def main() -> None:
    try:
        cli, keeper = build_cli()
    except pluggy.PluginValidationError as exc:  # an installed plugin is broken: say which
        sys.exit(f"rbee-keeper: {exc}")
    cli(obj=keeper, prog_name="rbee-keeper")
