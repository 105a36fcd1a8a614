"""SQLite files rbee owns (the queen's job store, each hive's model catalog), opened so that a
damaged one never stops a program.

A state file can be damaged by a crash mid-write on a bad disk, by a full disk, by a person
or a backup tool writing over it. None of it holds anything a program cannot run without, so
refusing to start (a traceback saying "file is not a database") helps nobody: the file is
moved aside with its ``-wal`` and ``-shm`` (kept for whoever wants to look into it, under a
name SQLite still opens), a warning names both paths, and the program starts with a fresh
one. Errors that are not damage (a locked file, a full disk, no permission) are left to the
caller: moving the file aside would lose good records.

They hold prompts, answers and paths: each file (and its ``-wal``/``-shm``) is mode 0600 in
a folder of mode 0700 (``rbee_core.private_files``).
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from rbee_core.private_files import create_private, private_dir, tighten

__all__ = ["DAMAGED", "is_damage", "move_aside", "open_sqlite"]

DAMAGED = ".damaged-"
"""Before a UTC time stamp, what a damaged file's name gets:
``X.sqlite.damaged-20261201T153000``."""

log = logging.getLogger("rbee.state")


def is_damage(error: BaseException) -> bool:
    """True for SQLite's errors that mean the file is not a sound database ("file is not a
    database", "database disk image is malformed"); False for the operational ones (locked,
    disk full, cannot open), which say nothing about the file's contents."""
    return isinstance(error, sqlite3.DatabaseError) and not isinstance(
        error, sqlite3.OperationalError
    )


def move_aside(path: Path) -> Path:
    """Rename ``path`` (and its ``-wal``/``-shm``) to ``PATH.damaged-STAMP``; the new path.

    The companions keep SQLite's naming (``PATH.damaged-STAMP-wal``), so opening the moved
    file still reads its write-ahead log.
    """
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    target = path.with_name(f"{path.name}{DAMAGED}{stamp}")
    n = 1
    while target.exists():  # twice in one second: keep both
        target = path.with_name(f"{path.name}{DAMAGED}{stamp}-{n}")
        n += 1
    for suffix in ("-wal", "-shm", ""):  # the main file last: it is what marks a database
        companion = path.with_name(path.name + suffix)
        if companion.exists():
            companion.rename(target.with_name(target.name + suffix))
    return target


def _connect(path: Path) -> sqlite3.Connection:
    """A connection to ``path``, which is made 0600 first: SQLite gives its ``-wal`` and
    ``-shm`` the main file's mode, so all three are private (those of an older rbee are
    tightened too)."""
    create_private(path)
    for suffix in ("-wal", "-shm"):
        tighten(path.with_name(path.name + suffix))
    return sqlite3.connect(path, isolation_level=None, check_same_thread=False)


def open_sqlite(
    path: Path,
    setup: Callable[[sqlite3.Connection], None],
    *,
    program: str,
    lost: str,
) -> tuple[sqlite3.Connection, Path | None]:
    """A connection to ``path`` after ``setup`` (pragmas, schema, checks) ran on it, and
    where a damaged file was moved (None if it was sound).

    ``setup`` must touch the file (any statement does) so that damage shows here, not at
    the first request. ``program`` and ``lost`` (what the fresh file starts without) go into
    the warning, which is logged (the daemons log to stderr; without a handler, logging's
    last resort prints warnings there too).
    """
    private_dir(path.parent)
    db = _connect(path)
    try:
        setup(db)
        return db, None
    except sqlite3.DatabaseError as exc:
        if not is_damage(exc):
            db.close()
            raise
        why = str(exc)
        try:
            # Before closing: the last connection to close deletes the -wal and -shm.
            moved = move_aside(path)
        except OSError as error:
            raise RuntimeError(
                f"{path} is damaged ({why}) and cannot be moved aside: {error}"
            ) from error
        finally:
            db.close()
    log.warning(
        "%s: %s is damaged (%s); moved it to %s and started a fresh one (%s)",
        program,
        path,
        why,
        moved,
        lost,
    )
    fresh = _connect(path)
    try:
        setup(fresh)
    except BaseException:
        fresh.close()
        raise
    return fresh, moved
