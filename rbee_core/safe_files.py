"""Files rbee writes or deletes stay inside the folders it owns.

Every writer and deleter of model files asks ``owned_path`` first, at the moment of the
operation: both the owned folder and the path are resolved (symlinks followed, ``..``
collapsed), and a path that does not land inside the folder is refused with a 400 that names
the rule. A name that comes from outside (a URL's last segment) is first reduced to a plain
base name by ``safe_file_name``, so it cannot climb out or hide control characters.
"""

from __future__ import annotations

import hashlib
import shutil
import unicodedata
from pathlib import Path

from rbee_core.errors import InvalidRequest

__all__ = ["FILES_STAY", "MAX_NAME_BYTES", "owned_path", "remove_owned", "safe_file_name"]

MAX_NAME_BYTES = 200
"""Longest base name kept (bytes of UTF-8): file systems allow 255, and ``.partial`` and
similar suffixes must still fit."""


FILES_STAY = "files stay in their folders"
"""The rule a refusal names: rbee writes and deletes files only inside the folders it owns."""


def owned_path(
    path: Path, root: Path, *, what: str = "the models folder", rule: str = FILES_STAY
) -> Path:
    """``path`` resolved, if it lies strictly inside ``root`` (resolved); else
    ``InvalidRequest`` naming ``rule``. ``what`` says in words which folder ``root`` is."""
    owned = root.resolve()
    resolved = path.resolve()
    if owned == resolved or owned not in resolved.parents:
        raise InvalidRequest(
            f"refused: {path} resolves to {resolved}, outside {what} {owned} ({rule})",
            "model",
            rule=rule,
        )
    return resolved


def remove_owned(path: Path, root: Path, *, what: str = "the models folder") -> None:
    """Delete the file or folder ``path`` (a folder with everything in it), checked by
    ``owned_path`` first. A symlink is removed itself, never what it points at."""
    if path.is_symlink():  # the link goes; what it points at stays, wherever that is
        if path.parent.resolve() != root.resolve():
            owned_path(path.parent, root, what=what)
        path.unlink()
        return
    resolved = owned_path(path, root, what=what)
    if resolved.is_dir():
        shutil.rmtree(resolved)  # it never follows symlinks inside the folder
    elif resolved.exists():
        resolved.unlink()


def safe_file_name(name: str, fallback: str, *, suffix: str = "") -> str:
    """``name`` (e.g. a URL's unquoted last segment) reduced to a safe base name: its last
    part after any ``/`` or ``\\``, without control characters or leading dots. When nothing
    usable is left (or only ``suffix``), the name is ``sha256(fallback)[:16] + suffix``, so
    the same URL always gets the same name. ``suffix`` (``.gguf``) is kept at the end when
    the name is shortened."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    # Control and format characters (escape sequences, bidi overrides) go; letters stay.
    base = "".join(c for c in base if unicodedata.category(c)[0] != "C").strip()
    end = suffix if suffix and base.endswith(suffix) else ""
    stem = base.removesuffix(end).lstrip(".").strip()  # no hidden file, no "." or ".."
    stem = stem.encode()[: MAX_NAME_BYTES - len(end.encode())].decode(errors="ignore")
    if not stem:
        return hashlib.sha256(fallback.encode()).hexdigest()[:16] + suffix
    return stem + end
