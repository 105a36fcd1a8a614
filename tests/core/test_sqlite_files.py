"""rbee_core.sqlite_files: a damaged file is moved aside with its companions under names
SQLite still opens; errors that are not damage leave the file where it is."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from rbee_core.sqlite_files import DAMAGED, is_damage, move_aside, open_sqlite


def setup(db: sqlite3.Connection) -> None:
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE IF NOT EXISTS t (x)")


def test_a_sound_file_opens_as_it_is(tmp_path: Path) -> None:
    path = tmp_path / "a.sqlite"
    db, moved = open_sqlite(path, setup, program="test", lost="nothing")
    db.execute("INSERT INTO t VALUES (1)")
    db.close()
    again, moved = open_sqlite(path, setup, program="test", lost="nothing")
    assert moved is None and again.execute("SELECT x FROM t").fetchall() == [(1,)]


def test_moving_aside_twice_in_a_second_keeps_both(tmp_path: Path) -> None:
    path = tmp_path / "a.sqlite"
    moved = []
    for content in (b"first", b"second"):
        path.write_bytes(content)
        Path(f"{path}-wal").write_bytes(content + b"-wal")
        moved.append(move_aside(path))
    assert moved[0] != moved[1]
    assert [m.read_bytes() for m in moved] == [b"first", b"second"]
    assert [Path(f"{m}-wal").read_bytes() for m in moved] == [b"first-wal", b"second-wal"]
    assert all(m.name.startswith("a.sqlite" + DAMAGED) for m in moved)
    assert not path.exists()


def test_an_error_that_is_not_damage_leaves_the_file(tmp_path: Path) -> None:
    path = tmp_path / "a.sqlite"
    open_sqlite(path, setup, program="test", lost="")[0].close()

    def locked(db: sqlite3.Connection) -> None:
        raise sqlite3.OperationalError("database is locked")

    with pytest.raises(sqlite3.OperationalError):
        open_sqlite(path, locked, program="test", lost="")
    assert path.exists() and not [p for p in tmp_path.iterdir() if DAMAGED in p.name]
    assert not is_damage(sqlite3.OperationalError("database or disk is full"))
    assert is_damage(sqlite3.DatabaseError("file is not a database"))
