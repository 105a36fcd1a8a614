"""The keeper's built-in commands, added through the same hook a third party uses."""

from __future__ import annotations

from typing import Any

from rbee_core import hookimpl
from rbee_keeper.chat import chat
from rbee_keeper.hive_commands import hive, worker
from rbee_keeper.infer import infer
from rbee_keeper.jobs_commands import jobs
from rbee_keeper.model_commands import model
from rbee_keeper.queen_commands import queen

__all__ = ["rbee_keeper_commands"]


@hookimpl
def rbee_keeper_commands(cli: Any) -> None:
    cli.add_command(infer)
    cli.add_command(chat)
    cli.add_command(queen)
    cli.add_command(jobs)
    cli.add_command(model)
    cli.add_command(hive)
    cli.add_command(worker)
