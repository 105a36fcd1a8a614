"""The hive's model catalog (SQLite): entries, restarts, and files changed behind its back."""

from __future__ import annotations

import os
from pathlib import Path

from rbee_core.models import LocalModel
from rbee_models.catalog import ModelCatalogDB, size_of


def gguf(path: Path, size: int = 1000) -> LocalModel:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"G" * size)
    return LocalModel(path.stem, path, "gguf")


def test_add_get_all_remove(tmp_path: Path) -> None:
    db = ModelCatalogDB(tmp_path / "state" / "catalog.sqlite")
    try:
        assert db.get("tiny") is None
        assert db.all() == []
        tiny = gguf(tmp_path / "m" / "tiny.gguf", 1234)
        entry = db.add("tiny", "file:" + str(tiny.path), tiny)
        assert entry.name == "tiny"
        assert entry.ref == f"file:{tiny.path}"
        assert entry.source == "file"
        assert entry.format == "gguf"
        assert entry.path == str(tiny.path)
        assert entry.size == 1234
        assert entry.sha256 is None
        assert entry.added_at > 0
        assert db.get("tiny") == entry
        assert entry.local == LocalModel("tiny", tiny.path, "gguf")

        big = gguf(tmp_path / "m" / "big.gguf", 10)
        db.add("big", "https://example.com/big.gguf", big, sha256="ab" * 32)
        assert [e.name for e in db.all()] == ["big", "tiny"]  # ordered by name
        stored = db.get("big")
        assert stored is not None
        assert stored.source == "https"
        assert stored.sha256 == "ab" * 32

        db.remove("tiny")
        assert db.get("tiny") is None
        assert [e.name for e in db.all()] == ["big"]
        db.remove("tiny")  # removing an absent name is harmless
    finally:
        db.close()


def test_add_replaces_an_entry_with_the_same_name(tmp_path: Path) -> None:
    db = ModelCatalogDB(tmp_path / "catalog.sqlite")
    try:
        db.add("m", "file:/a.gguf", gguf(tmp_path / "a.gguf", 5))
        db.add("m", "file:/b.gguf", gguf(tmp_path / "b.gguf", 7))
        entries = db.all()
        assert len(entries) == 1
        assert entries[0].ref == "file:/b.gguf"
        assert entries[0].size == 7
    finally:
        db.close()


def test_an_entry_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "state" / "catalog.sqlite"
    model = gguf(tmp_path / "m" / "kept.gguf", 321)
    db = ModelCatalogDB(path)
    added = db.add("kept", "pypi:pkg/kept.gguf", model, sha256="cd" * 32)
    db.close()

    reopened = ModelCatalogDB(path)
    try:
        assert reopened.get("kept") == added
        assert reopened.all() == [added]
        assert added.problem() is None
    finally:
        reopened.close()


def test_size_of_a_folder_counts_every_file(tmp_path: Path) -> None:
    folder = tmp_path / "st"
    (folder / "sub").mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"x" * 100)
    (folder / "config.json").write_bytes(b"{}")
    (folder / "sub" / "tokenizer.json").write_bytes(b"y" * 10)
    assert size_of(folder) == 112
    assert size_of(folder / "config.json") == 2


def test_problem_when_the_file_is_deleted(tmp_path: Path) -> None:
    db = ModelCatalogDB(tmp_path / "catalog.sqlite")
    try:
        model = gguf(tmp_path / "gone.gguf")
        entry = db.add("gone", "file:x", model)
        assert entry.problem() is None
        model.path.unlink()
        problem = entry.problem()
        assert problem is not None
        assert "gone" in problem
        assert str(model.path) in problem
    finally:
        db.close()


def test_problem_when_the_size_changes(tmp_path: Path) -> None:
    db = ModelCatalogDB(tmp_path / "catalog.sqlite")
    try:
        model = gguf(tmp_path / "grown.gguf", 1000)
        entry = db.add("grown", "file:x", model)
        with open(model.path, "ab") as f:
            f.write(b"extra")
        problem = entry.problem()
        assert problem is not None
        assert "changed size" in problem
        assert "1005" in problem
        assert "1000" in problem
    finally:
        db.close()


def test_problem_when_a_folder_model_loses_a_file(tmp_path: Path) -> None:
    folder = tmp_path / "st"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"x" * 100)
    (folder / "config.json").write_bytes(b"{}")
    db = ModelCatalogDB(tmp_path / "catalog.sqlite")
    try:
        entry = db.add("st", "file:x", LocalModel("st", folder, "safetensors"))
        assert entry.size == 102
        (folder / "config.json").unlink()
        problem = entry.problem()
        assert problem is not None
        assert "changed size" in problem
    finally:
        db.close()


def test_to_json(tmp_path: Path) -> None:
    db = ModelCatalogDB(tmp_path / "catalog.sqlite")
    try:
        model = gguf(tmp_path / "j.gguf", 42)
        entry = db.add("j", "file:" + str(model.path), model)
        data = entry.to_json()
        assert data == {
            "name": "j",
            "ref": f"file:{model.path}",
            "source": "file",
            "format": "gguf",
            "path": str(model.path),
            "size": 42,
            "sha256": None,
            "added_at": entry.added_at,
            "problem": None,
        }
        model.path.unlink()
        assert entry.to_json()["problem"] == entry.problem()
        assert entry.to_json()["problem"] is not None
    finally:
        db.close()


def test_problem_when_a_download_is_changed_keeping_its_size(tmp_path: Path) -> None:
    # A pinned download edited in place: the size says nothing, its mtime does; the store
    # then provisions it again, which checks the pin.
    db = ModelCatalogDB(tmp_path / "catalog.sqlite")
    try:
        model = gguf(tmp_path / "downloads" / "k" / "m.gguf", 1000)
        entry = db.add("url", f"https://example.com/m.gguf#sha256={'ab' * 32}", model)
        assert entry.problem() is None
        with open(model.path, "r+b") as f:
            f.write(b"X")
        os.utime(model.path, (entry.added_at + 5, entry.added_at + 5))
        problem = entry.problem()
        assert problem is not None
        assert problem.startswith("its file was modified after it was downloaded (at ")
        # A user's own file: editing it is the user's business, not a problem.
        own = db.add("own", f"file:{model.path}", model)
        os.utime(model.path, (own.added_at + 5, own.added_at + 5))
        assert own.problem() is None
    finally:
        db.close()
