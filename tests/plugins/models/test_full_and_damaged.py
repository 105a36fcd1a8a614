"""The hive on bad disks: a damaged catalog is moved aside and the downloaded models are
learned again; a download is refused before a byte is written when the server announces
more than the disk has free, and one that hits a file-size limit midway removes its
``.partial`` (unless RBEE_KEEP_PARTIAL is set) with a one-line message."""

from __future__ import annotations

import contextlib
import http.server
import logging
import multiprocessing
import os
import resource
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rbee_core.errors import ModelUnavailable
from rbee_core.models import ModelCatalog
from rbee_core.paths import models_dir
from rbee_core.sqlite_files import DAMAGED
from rbee_models.catalog import ModelCatalogDB
from rbee_models.download import KEEP_PARTIAL_ENV, fetch
from rbee_models.sources import SOURCE_NOTE, FileSource, UrlSource
from rbee_models.store import ModelStore

MiB = 1 << 20
DATA = os.urandom(4 * MiB)


class Handler(http.server.BaseHTTPRequestHandler):
    announce: int | None = None  # a Content-Length other than the file's

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(self.announce or len(DATA)))
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(DATA)
        self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[str, type[Handler]]]:
    handler = type("Bound", (Handler,), {})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/m/tiny.gguf", handler
    httpd.shutdown()
    httpd.server_close()


def quiet(*_: Any, **__: Any) -> None:
    pass


def test_a_download_bigger_than_the_free_space_is_refused_before_it_starts(
    server: tuple[str, type[Handler]], tmp_path: Path
) -> None:
    url, handler = server
    handler.announce = 10**18  # an exabyte: no disk has it free
    dest = tmp_path / "models" / "tiny.gguf"
    with pytest.raises(ModelUnavailable) as caught:
        fetch(url, dest, quiet, name="tiny.gguf", root=tmp_path)
    message = caught.value.message
    assert message.startswith("cannot download tiny.gguf: needs 1000000000.0 GB, ")
    assert f"free at {dest.parent}; free space or set RBEE_MODELS_DIR" in message
    assert "\n" not in message
    assert list(dest.parent.iterdir()) == []  # not a byte written


def _fetch_under_a_size_limit(url: str, dest: str, keep: bool, out: Any) -> None:
    """In a child process: a 1 MiB file-size limit (Python ignores SIGXFSZ, so a write past
    it fails with EFBIG, as on a real limit)."""
    if keep:
        os.environ[KEEP_PARTIAL_ENV] = "1"
    resource.setrlimit(resource.RLIMIT_FSIZE, (MiB, MiB))
    try:
        fetch(url, Path(dest), quiet, name="tiny.gguf", root=Path(dest).parent)
        out.put("downloaded")
    except ModelUnavailable as exc:
        out.put(exc.message)


@pytest.mark.parametrize("keep", [False, True])
def test_running_out_of_room_midway_is_one_line_and_removes_the_partial(
    server: tuple[str, type[Handler]], tmp_path: Path, keep: bool
) -> None:
    url, _ = server
    dest = tmp_path / "models" / "tiny.gguf"
    context = multiprocessing.get_context("fork")
    out = context.Queue()
    child = context.Process(target=_fetch_under_a_size_limit, args=(url, str(dest), keep, out))
    child.start()
    message = out.get(timeout=60)
    child.join(30)
    assert message.startswith("cannot download tiny.gguf: stopped after 1.0 MB of 4.2 MB: ")
    assert f"a file-size limit stopped the write at {dest.parent}" in message
    assert "\n" not in message
    partial = dest.with_name("tiny.gguf.partial")
    assert partial.exists() is keep  # kept for a resume only when asked
    assert not dest.exists()


def test_a_damaged_catalog_is_moved_aside_and_downloads_are_learned_again(
    server: tuple[str, type[Handler]], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url, _ = server
    sources = ModelCatalog([UrlSource("http"), FileSource()])
    path = tmp_path / "hive-catalog.sqlite"
    local = UrlSource("http").provision(url, quiet)  # a real download into the cache
    assert (local.path.parent / SOURCE_NOTE).read_text().strip() == url
    (models_dir() / "downloads" / "junk").mkdir()  # no note: not a download of rbee's
    ModelCatalogDB(path).close()
    path.write_bytes(os.urandom(100))

    with caplog.at_level(logging.WARNING):
        store = ModelStore(sources, ModelCatalogDB(path))
    assert store.db.damaged is not None
    assert store.db.damaged.name.startswith("hive-catalog.sqlite" + DAMAGED)
    said = [r.getMessage() for r in caplog.records]
    damaged = next(m for m in said if "is damaged" in m)
    assert str(path) in damaged and str(store.db.damaged) in damaged
    assert any(f"re-learned 1 model(s) from {models_dir()}: {url}" in m for m in said), said
    (entry,) = store.entries()
    assert (entry.name, entry.source, entry.path) == (url, "http", str(local.path))
    assert entry.problem() is None


def test_a_sound_catalog_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "hive-catalog.sqlite"
    ModelCatalogDB(path).close()
    db = ModelCatalogDB(path)
    assert db.damaged is None
    assert [p.name for p in tmp_path.iterdir() if DAMAGED in p.name] == []
