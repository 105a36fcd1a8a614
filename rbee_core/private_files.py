"""Files only their owner reads: rbee's state (job records with every prompt and answer,
the model catalog, logs that quote prompts and paths) is mode 0600 in folders of mode 0700.

Each daemon also runs with umask 077 (``restrict_umask``), so whatever else it creates is
private too; the helpers here set the modes explicitly as well, because a file or folder
made by an older rbee, or by the keeper (whose umask is the user's), keeps its old mode.
Only folders rbee owns are tightened (the state dir and its subfolders), never one a user
chose to share, such as their home or a models folder.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import BinaryIO

__all__ = [
    "PRIVATE_DIR_MODE",
    "PRIVATE_FILE_MODE",
    "create_private",
    "open_private",
    "private_dir",
    "restrict_umask",
    "tighten",
]

PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700


def restrict_umask() -> None:
    """From now on, files and folders this process (and its children) creates are its
    user's only."""
    os.umask(0o077)


def private_dir(path: Path) -> Path:
    """``path``, created if missing (its parents too), with mode 0700: for a folder rbee
    owns. Another user's folder keeps its mode (only its owner may change it)."""
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR_MODE)
    with contextlib.suppress(PermissionError):
        path.chmod(PRIVATE_DIR_MODE)
    return path


def tighten(path: Path) -> None:
    """Mode 0600 for an existing file of rbee's; nothing for a missing one."""
    with contextlib.suppress(FileNotFoundError, PermissionError):
        path.chmod(PRIVATE_FILE_MODE)


def create_private(path: Path) -> None:
    """``path`` exists, empty if it was not there, with mode 0600 (before anything is
    written to it, so nothing is ever readable by others)."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, PRIVATE_FILE_MODE))
    tighten(path)


def open_private(path: Path, truncate: bool = False) -> BinaryIO:
    """``path`` opened to append bytes (or emptied first), created with mode 0600 and made
    0600 if it existed: for logs."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if truncate else os.O_APPEND)
    fd = os.open(path, flags, PRIVATE_FILE_MODE)
    with contextlib.suppress(PermissionError):
        os.fchmod(fd, PRIVATE_FILE_MODE)
    return os.fdopen(fd, "wb" if truncate else "ab")
