"""rbee_core.safe_files: the one check every writer and deleter of model files makes, and
the safe base name a URL's file name is reduced to."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from rbee_core.errors import InvalidRequest
from rbee_core.safe_files import MAX_NAME_BYTES, owned_path, remove_owned, safe_file_name


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "models"
    folder.mkdir()
    return folder


def test_a_path_inside_is_returned_resolved(root: Path) -> None:
    assert owned_path(root / "downloads" / "a" / "x.gguf", root) == (
        root.resolve() / "downloads" / "a" / "x.gguf"
    )
    assert owned_path(root / "a" / ".." / "b.gguf", root) == root.resolve() / "b.gguf"


@pytest.mark.parametrize(
    "relative",
    ["../x.gguf", "a/../../x.gguf", "downloads/k/../../../escaped/x.gguf", ".", ""],
)
def test_a_path_that_climbs_out_or_is_the_root_is_refused(root: Path, relative: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        owned_path(root / relative, root, what="the models folder")
    assert caught.value.status == 400
    assert caught.value.message.startswith("refused: ")
    assert f"outside the models folder {root.resolve()}" in caught.value.message
    assert caught.value.details["rule"] == "files stay in their folders"


def test_an_absolute_path_elsewhere_is_refused(root: Path, tmp_path: Path) -> None:
    with pytest.raises(InvalidRequest):
        owned_path(tmp_path / "elsewhere" / "x.gguf", root)


def test_a_symlink_that_leads_out_is_refused(root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "downloads").symlink_to(outside)
    with pytest.raises(InvalidRequest, match="resolves to"):
        owned_path(root / "downloads" / "x.gguf", root)


def test_a_root_reached_through_a_symlink_is_still_the_root(tmp_path: Path) -> None:
    real = tmp_path / "real"
    (real / "a").mkdir(parents=True)
    link = tmp_path / "link"
    link.symlink_to(real)
    assert owned_path(link / "a" / "x", link) == real.resolve() / "a" / "x"


def test_remove_owned_deletes_a_folder_inside(root: Path) -> None:
    folder = root / "downloads" / "k"
    folder.mkdir(parents=True)
    (folder / "x.gguf").write_bytes(b"x")
    remove_owned(folder, root)
    assert not folder.exists()
    assert (root / "downloads").is_dir()
    remove_owned(folder, root)  # gone already: nothing to do


def test_remove_owned_refuses_what_lies_outside(root: Path, tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "m.gguf").write_bytes(b"mine")
    with pytest.raises(InvalidRequest):
        remove_owned(root / ".." / "victim", root)
    with pytest.raises(InvalidRequest):
        remove_owned(root, root)
    assert (victim / "m.gguf").read_bytes() == b"mine"


def test_remove_owned_removes_a_link_never_its_target(root: Path, tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "m.gguf").write_bytes(b"mine")
    link = root / "k"
    link.symlink_to(victim)
    remove_owned(link, root)
    assert not link.exists() and not link.is_symlink()
    assert (victim / "m.gguf").read_bytes() == b"mine"


def _hashed(fallback: str) -> str:
    return hashlib.sha256(fallback.encode()).hexdigest()[:16] + ".gguf"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("model.gguf", "model.gguf"),
        ("../../../escaped/x.gguf", "x.gguf"),
        ("/etc/cron.d/x.gguf", "x.gguf"),
        ("..\\..\\x.gguf", "x.gguf"),
        ("..gguf", _hashed("U")),
        ("...x.gguf", "x.gguf"),
        ("x.gguf.", "x.gguf."),
        (".hidden.gguf", "hidden.gguf"),
        ("a\x1b[31mred\x07.gguf", "a[31mred.gguf"),
        ("bidi\u202etxt.gguf", "biditxt.gguf"),
        ("Modèle-ü.gguf", "Modèle-ü.gguf"),
        ("with space.gguf", "with space.gguf"),
        ("..", _hashed("U")),
        ("../", _hashed("U")),
        ("", _hashed("U")),
        (".gguf", _hashed("U")),
        ("\x00\x01", _hashed("U")),
    ],
)
def test_safe_file_name(name: str, expected: str) -> None:
    assert safe_file_name(name, "U", suffix=".gguf") == expected


def test_a_long_name_is_cut_keeping_its_suffix() -> None:
    name = safe_file_name("é" * 300 + ".gguf", "U", suffix=".gguf")
    assert name.endswith(".gguf")
    assert len(name.encode()) <= MAX_NAME_BYTES
    name.encode().decode()  # never a cut multi-byte character
