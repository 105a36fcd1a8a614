"""Downloading one file safely: progress narration, resume, checks, atomic completion.

Bytes go to ``FILE.partial``; only a complete file whose size (and sha256, when known) is
right is renamed to ``FILE``. An interrupted download leaves just the ``.partial``, which no
loader takes for a model and the next attempt resumes with an HTTP Range request.

Disks fill up: before writing, the free space is checked against the size the server
announced, and a download that still runs out of room (another writer, a file-size limit)
removes its ``.partial``, which would otherwise keep the disk full, unless the hive runs
with ``RBEE_KEEP_PARTIAL=1`` (to resume once there is room). Either way the error is one
line that says what is needed, what is free, and where.
"""

from __future__ import annotations

import errno
import hashlib
import shutil
import threading
import time
from pathlib import Path

import httpx

from rbee_core.errors import ModelUnavailable
from rbee_core.narration import Narrate
from rbee_core.safe_files import owned_path
from rbee_core.settings import KEEP_PARTIAL
from rbee_core.units import human_bytes

__all__ = ["KEEP_PARTIAL_ENV", "Cancelled", "disk_full", "fetch", "free_space", "sha256_of"]

KEEP_PARTIAL_ENV = KEEP_PARTIAL.name
"""Set to 1 to keep a download's ``.partial`` when the disk fills up, to resume it later."""
FULL = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)

CHUNK = 1 << 20
PROGRESS_EVERY = 0.5  # seconds between progress narrations: a sane rate, not one per chunk


class Cancelled(Exception):
    """The download was asked to stop; the ``.partial`` file stays for a later resume."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def free_space(path: Path) -> int:
    """Bytes free for this process at ``path`` (or its nearest existing parent)."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free


def disk_full(where: Path, exc: OSError) -> str:
    """The second half of the one-line error of a write that found no room at ``where``."""
    if exc.errno == errno.EFBIG:
        return (
            f"a file-size limit stopped the write at {where} ({exc.strerror}); "
            "raise the limit (ulimit -f) or set RBEE_MODELS_DIR"
        )
    return (
        f"no space left at {where} ({human_bytes(free_space(where))} free); "
        "free space or set RBEE_MODELS_DIR"
    )


def _keep_partial() -> bool:
    return KEEP_PARTIAL.read()


def fetch(
    url: str,
    dest: Path,
    narrate: Narrate,
    *,
    name: str,
    root: Path,
    sha256: str | None = None,
    cancel: threading.Event | None = None,
    timeout: float = 30.0,
) -> Path:
    """Download ``url`` to ``dest`` (resuming ``dest.partial``); return ``dest``.

    ``root`` is the folder rbee owns (the models folder): ``dest`` and its ``.partial`` are
    checked to lie inside it (resolved, symlinks followed) before every write, rename and
    unlink."""

    def inside(path: Path) -> Path:
        return owned_path(path, root)

    inside(dest).parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".partial")
    inside(partial)
    have = partial.stat().st_size if partial.exists() else 0
    headers = {"Range": f"bytes={have}-"} if have else {}
    started = time.monotonic()
    total: int | None
    try:
        with httpx.stream(
            "GET", url, headers=headers, timeout=timeout, follow_redirects=True
        ) as response:
            if response.status_code == 416:
                # Nothing left to fetch: the partial is whole, if it is as long as the file
                # the host has now; else the file changed there, and the partial is junk.
                if _full_size(response) != have:
                    inside(partial).unlink()
                    return fetch(
                        url,
                        dest,
                        narrate,
                        name=name,
                        root=root,
                        sha256=sha256,
                        cancel=cancel,
                        timeout=timeout,
                    )
                total = have
            else:
                if response.status_code not in (200, 206):
                    raise ModelUnavailable(
                        f"cannot download {name}: {url} answered HTTP {response.status_code}"
                    )
                if response.status_code == 200:
                    have = 0  # the server ignored our Range: start again
                length = response.headers.get("content-length")
                total = have + int(length) if length is not None else None
                if length is not None:
                    _check_room(dest.parent, int(length), partial if have == 0 else None, name)
                try:
                    _write(response, inside(partial), have, total, narrate, name, started, cancel)
                except OSError as exc:
                    if exc.errno not in FULL:
                        raise
                    written = partial.stat().st_size if partial.exists() else 0
                    if not _keep_partial():
                        inside(partial).unlink(missing_ok=True)  # it would keep the disk full
                    size_text = human_bytes(total) if total is not None else "unknown size"
                    raise ModelUnavailable(
                        f"cannot download {name}: stopped after {human_bytes(written)} of "
                        f"{size_text}: {disk_full(dest.parent, exc)}"
                    ) from None
    except httpx.HTTPError as exc:
        raise ModelUnavailable(f"cannot download {name} from {url}: {exc}") from exc
    size = partial.stat().st_size
    if total is not None and size != total:
        raise ModelUnavailable(f"download of {name} is incomplete: {size} of {total} bytes")
    if sha256 is not None:
        narrate("download_verify", f"checking the sha256 of {name}")
        actual = sha256_of(partial)
        if actual != sha256.lower():
            inside(partial).unlink()  # a corrupt file must not be resumed
            raise ModelUnavailable(
                f"download of {name} is corrupt: sha256 {actual}, expected {sha256}"
            )
    inside(partial).rename(inside(dest))
    return dest


def _check_room(folder: Path, needed: int, replaced: Path | None, name: str) -> None:
    """Refuse a download the disk has no room for, before writing a byte of it."""
    free = free_space(folder)
    if replaced is not None and replaced.exists():  # a stale partial, about to be rewritten
        free += replaced.stat().st_size
    if needed > free:
        raise ModelUnavailable(
            f"cannot download {name}: needs {human_bytes(needed)}, {human_bytes(free)} free "
            f"at {folder}; free space or set RBEE_MODELS_DIR"
        )


def _full_size(response: httpx.Response) -> int | None:
    """N from a 416's ``Content-Range: bytes */N``."""
    unit, _, rest = response.headers.get("content-range", "").partition(" ")
    size = rest.rpartition("/")[2]
    return int(size) if unit == "bytes" and size.isdigit() else None


def _write(
    response: httpx.Response,
    partial: Path,
    have: int,
    total: int | None,
    narrate: Narrate,
    name: str,
    started: float,
    cancel: threading.Event | None,
) -> None:
    size_text = human_bytes(total) if total is not None else "unknown size"
    if have:
        narrate(
            "download_resume",
            f"resuming the download of {name} at {human_bytes(have)} of {size_text}",
        )
    else:
        narrate("download_start", f"downloading {name} ({size_text})")
    done = have
    last = 0.0
    with open(partial, "ab" if have else "wb") as out:
        for block in response.iter_bytes(CHUNK):
            if cancel is not None and cancel.is_set():
                raise Cancelled(f"the download of {name} was cancelled")
            out.write(block)
            done += len(block)
            now = time.monotonic()
            if now - last >= PROGRESS_EVERY or done == total:
                last = now
                rate = (done - have) / max(now - started, 1e-6)
                share = f"{100 * done / total:.0f}% " if total else ""
                narrate(
                    "download_progress",
                    f"{name}: {share}({human_bytes(done)} of {size_text}, {human_bytes(rate)}/s)",
                    progress={"done": done, "total": total, "unit": "bytes", "rate": rate},
                )
