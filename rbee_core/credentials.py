"""The cluster's API key, as every rbee program reads and sends it (stdlib only: the keeper
uses it without loading a web framework).

A program gets the key from ``RBEE_API_KEY`` or from a file (``--api-key-file PATH``): never
from its command line, which every local user reads in ``ps`` and ``/proc/PID/cmdline``.
The file is treated as ssh treats a private key: one that group or others may read is
refused, since the key in it is no secret any more.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Sequence
from pathlib import Path

from rbee_core.settings import API_KEY

__all__ = [
    "API_KEY_ENV",
    "API_KEY_FILE_HELP",
    "CMDLINE_KEY_WARNING",
    "KeyFileError",
    "api_key",
    "auth_headers",
    "read_key_file",
    "reexec_without_key",
    "use_key_file",
    "without_key_argument",
]

API_KEY_ENV = API_KEY.name
API_KEY_FILE_HELP = (
    "read the cluster's API key from the first line of PATH (a file only you can read: "
    "chmod 600); the same as RBEE_API_KEY"
)
CMDLINE_KEY_WARNING = (
    "warning: --api-key shows the key to every user of this machine (ps, /proc/PID/cmdline) "
    "until the program has started; use --api-key-file PATH or RBEE_API_KEY instead"
)


class KeyFileError(Exception):
    """The key file is missing, empty, or readable by others: one line says which."""


def api_key() -> str | None:
    """The cluster's key, ``RBEE_API_KEY``: None when unset or blank."""
    return API_KEY.read()


def auth_headers() -> dict[str, str]:
    """Headers for calls to another rbee daemon: the key, if this process has one."""
    key = api_key()
    return {"Authorization": f"Bearer {key}"} if key else {}


def read_key_file(path: str | Path) -> str:
    """The key in ``path``: its first line, stripped. Raises ``KeyFileError`` for a file
    that cannot be read, holds no key, or that group or others may read (mode & 0o077)."""
    path = Path(path)
    try:
        with path.open("rb") as file:
            mode = os.fstat(file.fileno()).st_mode
            if not stat.S_ISREG(mode):
                raise KeyFileError(f"API key file {path} is not a regular file")
            if mode & 0o077:
                raise KeyFileError(
                    f"API key file {path} is readable by others (mode {stat.S_IMODE(mode):o}): "
                    f"run chmod 600 {path}"
                )
            first = file.readline(4096)
    except OSError as exc:
        raise KeyFileError(f"cannot read API key file {path}: {exc.strerror}") from None
    try:
        key = first.decode().strip()
    except UnicodeDecodeError:
        raise KeyFileError(f"API key file {path} is not text") from None
    if not key:
        raise KeyFileError(f"API key file {path} is empty: its first line must be the key")
    return key


def use_key_file(path: str, program: str) -> None:
    """``--api-key-file PATH`` of a program: the key into ``RBEE_API_KEY`` (which the
    processes it starts inherit), or exit 2 with one line saying what is wrong."""
    try:
        os.environ[API_KEY_ENV] = read_key_file(path)
    except KeyFileError as exc:
        print(f"{program}: {exc}", file=sys.stderr)
        sys.exit(2)


def without_key_argument(args: Sequence[str], key: str, option: str = "--api-key") -> list[str]:
    """``args`` without ``--api-key KEY`` / ``--api-key=KEY`` (or an abbreviation argparse
    accepted, like ``--api-k KEY``): what the program re-executes itself with, so that
    ``/proc/PID/cmdline`` stops showing the key."""
    out: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        name, eq, value = arg.partition("=")
        is_option = len(name) > 2 and option.startswith(name)
        if is_option and eq and value == key:
            i += 1
            continue
        if is_option and not eq and i + 1 < len(args) and args[i + 1] == key:
            i += 2
            continue
        out.append(arg)
        i += 1
    return out


def reexec_without_key(key: str) -> None:
    """Put ``key`` in ``RBEE_API_KEY`` and replace this process with itself, run without
    the ``--api-key`` argument (same pid, same interpreter options). Only for a program
    started from its command line (``sys.argv``); returns when the key is not found there."""
    script = len(sys.argv) - 1  # the program's own arguments end sys.orig_argv
    head = sys.orig_argv[: len(sys.orig_argv) - script] if script else list(sys.orig_argv)
    tail = sys.orig_argv[len(head) :]
    scrubbed = without_key_argument(tail, key)
    if scrubbed == tail:
        return
    os.environ[API_KEY_ENV] = key
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [*head, *scrubbed])
