"""``rbee-keeper chat``: a conversation with a model, one job per turn.

Each turn sends the whole conversation so far as ``messages`` (the model's chat template
renders it, and llama.cpp reuses the cached prefix), so the model answers in context; being
an ordinary job, each turn shows in ``jobs list`` and can be cancelled like any other.

A turn that does not finish (Ctrl-C, or an error) is left out of the conversation, the
question with its partial answer: a cut-off answer would be taken by the model as what it
said, and a question without its answer would put two user messages in a row, which chat
templates expect never to see. The question is in the line history (up arrow) to ask again.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from rbee_core.paths import state_dir
from rbee_core.private_files import create_private, private_dir
from rbee_keeper.context import Keeper, pass_keeper, queen_url_option
from rbee_keeper.infer import run_job, sampling_options
from rbee_keeper.job_options import job_fields
from rbee_keeper.queen_lifecycle import ensure_queen

__all__ = ["COMMANDS", "Conversation", "chat", "history_file", "read_message"]

PROMPT = ">>> "
CONTINUATION = "... "
BLOCK = '"""'
HISTORY_LENGTH = 1000

COMMANDS = {
    "/help": "list these commands",
    "/clear": "forget the conversation (the system message stays)",
    "/model M": "talk to model M from the next question on (the conversation is kept)",
    "/bye": "leave (Ctrl-D too)",
}


@dataclass
class Conversation:
    """The turns so far, as the job API's ``messages``."""

    model: str
    system: str | None = None
    turns: list[dict[str, str]] = field(default_factory=list)

    def messages_with(self, question: str) -> list[dict[str, str]]:
        """Everything the model is to see for ``question``: the system message, the turns
        so far, then the question."""
        head = [{"role": "system", "content": self.system}] if self.system else []
        return [*head, *self.turns, {"role": "user", "content": question}]

    def add_turn(self, question: str, answer: str) -> None:
        self.turns += [
            {"role": "user", "content": question},
            {"role": "assistant", "content": answer},
        ]

    def clear(self) -> None:
        self.turns.clear()


def read_message(read_line: Callable[[str], str]) -> str:
    """One message: a line, or a block between ``\"\"\"`` lines (as in Ollama), which may
    hold blank lines and pasted text. ``read_line(prompt)`` raises EOFError at the end of
    input; so does this, unless a block was open (its text so far is the message)."""
    line = read_line(PROMPT)
    if not line.lstrip().startswith(BLOCK):
        return line
    first = line.lstrip()[len(BLOCK) :]
    if first.rstrip().endswith(BLOCK):  # """one line"""
        return first.rstrip()[: -len(BLOCK)]
    lines = [first] if first else []
    while True:
        try:
            more = read_line(CONTINUATION)
        except EOFError:
            break
        if more.rstrip().endswith(BLOCK):
            lines.append(more.rstrip()[: -len(BLOCK)])
            break
        lines.append(more)
    return "\n".join(lines).strip("\n")


def history_file() -> Path:
    """Where the line history lives: in rbee's state dir, never the home's top level."""
    return state_dir() / "chat-history"


@contextlib.contextmanager
def _line_editing(interactive: bool) -> Iterator[Callable[[str], str]]:
    """``read_line(prompt)``: ``input`` with readline's editing and a saved history at a
    terminal; plain lines without any prompt from a pipe."""
    if not interactive:

        def read_piped(_prompt: str) -> str:
            line = sys.stdin.readline()
            if not line:
                raise EOFError
            return line.rstrip("\n")

        yield read_piped
        return
    import readline  # only at a terminal: it changes how input() and the terminal behave

    path = history_file()
    with contextlib.suppress(OSError):
        readline.read_history_file(path)
    readline.set_history_length(HISTORY_LENGTH)

    def read_terminal(prompt: str) -> str:
        if sys.stdout.isatty():
            return input(prompt)
        # stdout goes to a file (chat > answers.txt): the prompt is not an answer.
        sys.stderr.write(prompt)
        sys.stderr.flush()
        return input()

    try:
        yield read_terminal
    finally:
        with contextlib.suppress(OSError):
            private_dir(path.parent)
            create_private(path)  # what was asked is for its asker only
            readline.write_history_file(path)


def _say(text: str) -> None:
    """The session's own words (help, errors): on stderr, so stdout holds only answers."""
    click.echo(text, err=True)


def _command(text: str, conversation: Conversation) -> bool:
    """Run a ``/command``; False when it ends the session."""
    name, _, argument = text.strip().partition(" ")
    argument = argument.strip()
    if name == "/bye":
        return False
    if name == "/help":
        for usage, what in COMMANDS.items():
            _say(f"  {usage:<10} {what}")
        _say(f"  {BLOCK}        a message of several lines: open and close it with {BLOCK}")
    elif name == "/clear":
        conversation.clear()
        _say("the conversation is forgotten")
    elif name == "/model":
        if not argument:
            _say(f"talking to {conversation.model}; /model M switches to M")
        else:
            conversation.model = argument
            _say(f"now talking to {argument}")
    else:
        _say(f"unknown command {name}; /help lists the commands")
    return True


@click.command()
@sampling_options
@click.option("--system", help="A system message: how the model should answer.")
@click.option("--verbose", "-v", is_flag=True, help="Narrate every job, as infer does.")
@queen_url_option
@pass_keeper
def chat(
    keeper: Keeper,
    /,
    model: str,
    system: str | None,
    verbose: bool,
    queen_timeout: float,
    queen_url: str,
    **sampling: Any,
) -> None:
    """Talk with a model: each answer streams as it comes, in the context of the
    conversation so far.

    \b
    Commands:
      /help      list the commands
      /clear     forget the conversation
      /model M   talk to model M from now on
      /bye       leave (Ctrl-D too)

    A message of several lines goes between two \"\"\" lines. Ctrl-C stops the answer
    being written (the job is cancelled) and keeps the session; that turn is left out of
    the conversation. Line editing and history (up arrow) at a terminal; the history is
    kept in rbee's state dir.

    From a pipe, each line (or \"\"\" block) is a question and only the answers are
    printed. Narration is brief: the queen's start and stop, and errors (all of it with
    --verbose). Starts the queen if none answers at --queen-url, and stops it at the end if
    it was started here.
    """
    conversation = Conversation(model, system)
    settings = job_fields(**sampling)
    interactive = sys.stdin.isatty()
    queen = ensure_queen(keeper, queen_url, queen_timeout)
    failed = False
    try:
        with _line_editing(interactive) as read_line:
            if interactive:
                _say(f"talking to {model}; /help for the commands, /bye or Ctrl-D to leave")
            failed = _session(
                keeper,
                queen.client,
                conversation,
                settings,
                read_line,
                interactive=interactive,
                verbose=verbose,
            )
    finally:
        queen.stop(keeper)
    if failed:
        raise click.ClickException("a question of the piped input was not answered")


def _session(
    keeper: Keeper,
    client: Any,
    conversation: Conversation,
    settings: dict[str, Any],
    read_line: Callable[[str], str],
    *,
    interactive: bool,
    verbose: bool,
) -> bool:
    """Questions and answers until the end of input or ``/bye``; True if a piped question
    failed (from a pipe the first failure ends the session: a script wants to know)."""
    while True:
        try:
            text = read_message(read_line)
        except EOFError:
            if interactive:
                _say("")
            return False
        except KeyboardInterrupt:  # at the prompt: drop the line, as a shell does
            if not interactive:
                raise
            _say("")
            continue
        if not text.strip():
            continue
        if text.startswith("/"):
            if not _command(text, conversation):
                return False
            continue
        job = {
            "model": conversation.model,
            "prompt": text,
            "messages": conversation.messages_with(text),
            **settings,
        }
        try:
            answer = run_job(keeper, client, job, verbose=verbose)
        except KeyboardInterrupt:  # the job is cancelled by now
            if not interactive:  # a script's Ctrl-C stops the whole of it
                raise
            sys.stdout.write("\n")
            sys.stdout.flush()
            _say("stopped; this turn is left out of the conversation")
            continue
        except click.ClickException as exc:
            _say(f"error: {exc.format_message()}")
            if not interactive:
                return True
            continue
        conversation.add_turn(text, answer)
