"""rbee_core.private_files and the state files made with it: 0600 files in 0700 folders,
older ones tightened, folders rbee does not own left alone."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

from rbee_core.paths import logs_dir, state_dir
from rbee_core.private_files import create_private, open_private, private_dir
from rbee_core.sqlite_files import open_sqlite


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_state_dir_and_its_logs_folder_are_0700_even_when_made_before(
    rbee_home: Path,
) -> None:
    rbee_home.chmod(0o755)
    state_dir().mkdir(mode=0o755)
    state_dir().chmod(0o755)
    assert mode(logs_dir()) == 0o700
    assert mode(state_dir()) == 0o700
    assert mode(rbee_home) == 0o755  # RBEE_HOME is the user's choice: left as it is


def test_a_folder_above_the_one_rbee_owns_keeps_its_mode(tmp_path: Path) -> None:
    above = tmp_path / "home"
    above.mkdir(mode=0o755)
    above.chmod(0o755)
    private_dir(above / "rbee")
    assert mode(above) == 0o755 and mode(above / "rbee") == 0o700


def test_logs_are_0600_new_or_old(tmp_path: Path) -> None:
    old = tmp_path / "old.log"
    old.write_bytes(b"before\n")
    old.chmod(0o644)
    with open_private(old) as log:
        log.write(b"after\n")
    assert old.read_bytes() == b"before\nafter\n" and mode(old) == 0o600
    with open_private(old, truncate=True) as log:
        log.write(b"fresh\n")
    assert old.read_bytes() == b"fresh\n"
    new = tmp_path / "new.log"
    open_private(new).close()
    assert mode(new) == 0o600


def test_create_private_keeps_what_is_there(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_text("kept")
    path.chmod(0o666)
    create_private(path)
    assert path.read_text() == "kept" and mode(path) == 0o600


def _setup(db: sqlite3.Connection) -> None:
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE IF NOT EXISTS t (x)")


def test_a_sqlite_file_its_wal_and_shm_are_0600_in_a_0700_folder(tmp_path: Path) -> None:
    path = tmp_path / "state" / "a.sqlite"
    db, _ = open_sqlite(path, _setup, program="test", lost="nothing")
    db.execute("INSERT INTO t VALUES (1)")
    for suffix in ("", "-wal", "-shm"):
        assert mode(path.with_name(path.name + suffix)) == 0o600, suffix
    assert mode(path.parent) == 0o700
    db.close()


def test_an_older_world_readable_sqlite_file_is_tightened(tmp_path: Path) -> None:
    path = tmp_path / "a.sqlite"
    db, _ = open_sqlite(path, _setup, program="test", lost="nothing")
    db.execute("INSERT INTO t VALUES (1)")
    for suffix in ("", "-wal", "-shm"):
        path.with_name(path.name + suffix).chmod(0o644)
    again, _ = open_sqlite(path, _setup, program="test", lost="nothing")
    for suffix in ("", "-wal", "-shm"):
        assert mode(path.with_name(path.name + suffix)) == 0o600, suffix
    assert again.execute("SELECT x FROM t").fetchall() == [(1,)]
    again.close()
    db.close()
