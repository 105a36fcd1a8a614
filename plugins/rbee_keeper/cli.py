"""The ``rbee-keeper`` entry point: a click group whose commands come from plugins.

``-q/--quiet`` and ``--queen-url`` are typed wherever people type them: before the
subcommand (``rbee-keeper -q infer hi``) or after it (``rbee-keeper infer hi -q``). Rather
than each command declaring them, ``build_cli`` walks the command tree once the plugins have
added their commands and gives every command and group that lacks them the two options,
third-party commands included. Neither is passed to the command's function: ``-q`` silences
the terminal sink at once, and ``--queen-url`` is kept in ``ctx.meta`` (shared by a command
and its parents), where ``queen_url_option``'s default and ``Keeper.queen_url`` read it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import click
import pluggy

from rbee_core import __version__
from rbee_core.credentials import API_KEY_ENV, KeyFileError, read_key_file
from rbee_core.plugins import create_plugin_manager
from rbee_keeper.context import QUEEN_URL_META, TERMINAL, Keeper
from rbee_keeper.terminal import TerminalSink

__all__ = ["add_common_options", "build_cli", "main"]


def _set_quiet(ctx: click.Context, _: click.Parameter, quiet: bool) -> None:
    if quiet:
        keeper = ctx.find_object(Keeper)
        if keeper is not None:
            keeper.set_quiet()


def _keep_queen_url(ctx: click.Context, _: click.Parameter, url: str | None) -> None:
    if url is not None:  # the innermost one typed wins: it is parsed last
        ctx.meta[QUEEN_URL_META] = url


def _use_key_file(_ctx: click.Context, _: click.Parameter, path: str | None) -> None:
    if path is not None:  # in the environment, where every call and started queen reads it
        try:
            os.environ[API_KEY_ENV] = read_key_file(path)
        except KeyFileError as exc:
            raise click.BadParameter(str(exc)) from None


def _quiet_option() -> click.Option:
    return click.Option(
        ["--quiet", "-q"],
        is_flag=True,
        expose_value=False,
        callback=_set_quiet,
        help="No narration on stderr.",
    )


def _queen_url_option() -> click.Option:
    return click.Option(
        ["--queen-url"],
        expose_value=False,
        callback=_keep_queen_url,
        metavar="URL",
        help="Where the queen listens (default: $RBEE_QUEEN_URL, else http://127.0.0.1:8500).",
    )


def _commands(command: click.Command) -> Iterator[click.Command]:
    yield command
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            yield from _commands(sub)


def _takes(command: click.Command, opt: str) -> bool:
    return any(
        opt in getattr(p, "opts", ()) + getattr(p, "secondary_opts", ()) for p in command.params
    )


def add_common_options(cli: click.Group) -> None:
    """Give every command and group of the tree ``-q/--quiet`` and ``--queen-url``, unless
    it declares them itself (a command's own ``--queen-url`` reads the inherited one as its
    default; a third-party command's own ``-q`` keeps its meaning)."""
    for command in _commands(cli):
        if not (_takes(command, "-q") or _takes(command, "--quiet")):
            command.params.append(_quiet_option())
        if not _takes(command, "--queen-url"):
            command.params.append(_queen_url_option())


def build_cli() -> tuple[click.Group, Keeper]:
    @click.group(context_settings={"help_option_names": ["-h", "--help"]})
    @click.version_option(__version__, prog_name="rbee-keeper")
    @click.option(
        "--api-key-file",
        metavar="PATH",
        expose_value=False,
        callback=_use_key_file,
        help="Read the cluster's API key from the first line of PATH (a file only you can "
        "read); the default is $RBEE_API_KEY. Goes before the command.",
    )
    def cli() -> None:
        """rbee: the machines you own as one LLM inference cluster.

        Tokens go to stdout, narration (what rbee is doing) to stderr. -q and --queen-url
        may come before or after the command.
        """

    pm = create_plugin_manager("keeper")
    pm.register(TerminalSink(), name=TERMINAL)
    pm.hook.rbee_keeper_commands(cli=cli)
    add_common_options(cli)
    return cli, Keeper(pm)


def main() -> None:
    try:
        cli, keeper = build_cli()
    except pluggy.PluginValidationError as exc:  # an installed plugin is broken: say which
        sys.exit(f"rbee-keeper: {exc}")
    cli(obj=keeper, prog_name="rbee-keeper")
