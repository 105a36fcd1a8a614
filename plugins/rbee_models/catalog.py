"""The hive's model catalog: which models are on this machine, where, and how big.

SQLite in the state dir, so it survives restarts. An entry is written only after the files
are complete and checked, so the catalog never lists a half-downloaded model; ``problem``
notices files changed or deleted behind its back. A damaged file is moved aside and a fresh
one started (``damaged`` says where it went; the store then re-learns the models on disk).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rbee_core.models import LocalModel
from rbee_core.sqlite_files import open_sqlite

__all__ = ["CatalogEntry", "ModelCatalogDB", "size_of"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS models (
    name TEXT PRIMARY KEY,      -- what users call it: an alias or the reference itself
    ref TEXT NOT NULL,          -- the full source reference
    source TEXT NOT NULL,       -- the reference's scheme
    format TEXT NOT NULL,
    path TEXT NOT NULL,
    size INTEGER NOT NULL,      -- bytes on disk when it was added
    sha256 TEXT,                -- of a single-file model, when known
    added_at REAL NOT NULL
)
"""


def size_of(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    name: str
    ref: str
    source: str
    format: str
    path: str
    size: int
    sha256: str | None
    added_at: float

    @property
    def local(self) -> LocalModel:
        return LocalModel(self.name, Path(self.path), self.format)

    def problem(self) -> str | None:
        """Why the files can no longer be trusted, or None if they look as when added."""
        path = Path(self.path)
        if not path.exists():
            return f"its files are gone ({self.path})"
        size = size_of(path)
        if size != self.size:
            return f"its files changed size ({size} bytes, {self.size} when added)"
        # A file rbee downloaded is last written before its entry is added (the kernel's
        # clock for mtime never runs ahead of time.time()): a later mtime is a change on
        # disk that kept the size, which provisioning again checks against a #sha256= pin.
        if self.source in ("http", "https") and path.is_file():
            modified = path.stat().st_mtime
            if modified > self.added_at:
                when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(modified))
                return f"its file was modified after it was downloaded (at {when})"
        return None

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"problem": self.problem()}


def _setup(db: sqlite3.Connection) -> None:
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(_SCHEMA)
    # A few rows: reading them all is how a damaged page shows now, not at the next job.
    db.execute("SELECT * FROM models").fetchall()
    if db.execute("PRAGMA quick_check").fetchone()[0] != "ok":
        raise sqlite3.DatabaseError("database disk image is malformed (quick_check)")


class ModelCatalogDB:
    """One connection, serialised by a lock: downloads finish in worker threads."""

    def __init__(self, path: Path) -> None:
        self._db, self.damaged = open_sqlite(
            path,
            _setup,
            program="rbee-hive",
            lost="models downloaded before are learned again from the model cache",
        )
        self._lock = threading.Lock()

    def add(
        self, name: str, ref: str, model: LocalModel, sha256: str | None = None
    ) -> CatalogEntry:
        entry = CatalogEntry(
            name=name,
            ref=ref,
            source=ref.partition(":")[0],
            format=model.format,
            path=str(model.path),
            size=size_of(model.path),
            sha256=sha256,
            added_at=time.time(),
        )
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO models VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    entry.name,
                    entry.ref,
                    entry.source,
                    entry.format,
                    entry.path,
                    entry.size,
                    entry.sha256,
                    entry.added_at,
                ),
            )
        return entry

    def get(self, name: str) -> CatalogEntry | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM models WHERE name = ?", (name,)).fetchone()
        return CatalogEntry(*row) if row else None

    def all(self) -> list[CatalogEntry]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM models ORDER BY name").fetchall()
        return [CatalogEntry(*row) for row in rows]

    def remove(self, name: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM models WHERE name = ?", (name,))

    def close(self) -> None:
        self._db.close()
