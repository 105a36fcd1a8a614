"""rbee_models.download.fetch against a real HTTP server on the loopback interface: resume,
checks, progress narration, cancellation."""

from __future__ import annotations

import hashlib
import http.server
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from rbee_core.errors import ModelUnavailable
from rbee_models import download
from rbee_models.download import Cancelled, fetch, sha256_of

MiB = 1 << 20
# Three full chunks of fetch's reads, so a cut after two leaves a resumable .partial.
DATA = bytes(range(256)) * (3 * MiB // 256)
PATH = "/models/tiny.gguf"


@dataclass
class Served:
    """What the server serves and what it saw."""

    data: bytes = DATA
    cut_after: int | None = None  # send only this many body bytes, then close (once)
    ranges: list[str | None] = field(default_factory=list)  # the Range header of each GET
    lock: threading.Lock = field(default_factory=threading.Lock)


class Handler(http.server.BaseHTTPRequestHandler):
    served: Served  # set on the subclass the fixture makes

    def do_GET(self) -> None:
        served = self.served
        with served.lock:
            served.ranges.append(self.headers.get("Range"))
            cut, served.cut_after = served.cut_after, None
        if self.path != PATH:
            self.send_error(404, "no such model")
            return
        data = served.data
        start = 0
        wanted = self.headers.get("Range")
        if wanted is not None:
            match = re.fullmatch(r"bytes=(\d+)-", wanted)
            assert match is not None, wanted
            start = int(match.group(1))
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body if cut is None else body[:cut])
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client stopped reading (cancelled): nothing to do
        self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        pass


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hangs up mid-body is what some tests do on purpose


@pytest.fixture
def served() -> Iterator[tuple[str, Served]]:
    """(base URL, state) of a server on 127.0.0.1 with an ephemeral port."""
    state = Served()
    handler = type("BoundHandler", (Handler,), {"served": state})
    server = Server(("127.0.0.1", 0), handler)
    thread = threading.Thread(
        target=server.serve_forever, args=(0.02,), name="test http", daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


class Recorder:
    """A ``Narrate`` that keeps what it is told."""

    def __init__(self) -> None:
        self.said: list[tuple[str, str, dict[str, Any] | None]] = []

    def __call__(self, action: str, message: str, progress: dict[str, Any] | None = None) -> None:
        self.said.append((action, message, progress))

    def actions(self) -> list[str]:
        return [action for action, _, _ in self.said]

    def progress(self) -> list[dict[str, Any]]:
        return [p for action, _, p in self.said if action == "download_progress" and p]


def partial_of(dest: Path) -> Path:
    return dest.with_name(dest.name + ".partial")


def test_full_download(served: tuple[str, Served], tmp_path: Path) -> None:
    base, state = served
    dest = tmp_path / "models" / "sub" / "tiny.gguf"  # parents are created
    narrate = Recorder()
    assert fetch(base + PATH, dest, narrate, name="tiny.gguf", root=tmp_path) == dest
    assert dest.read_bytes() == DATA
    assert not partial_of(dest).exists()
    assert sorted(p.name for p in dest.parent.iterdir()) == ["tiny.gguf"]
    assert state.ranges == [None]  # a fresh download asks for the whole file
    assert narrate.actions()[0] == "download_start"
    assert "tiny.gguf" in narrate.said[0][1]


def test_interrupted_download_keeps_only_the_partial(
    served: tuple[str, Served], tmp_path: Path
) -> None:
    base, state = served
    state.cut_after = 2 * MiB
    dest = tmp_path / "models" / "tiny.gguf"
    with pytest.raises(ModelUnavailable, match=r"tiny\.gguf"):
        fetch(base + PATH, dest, Recorder(), name="tiny.gguf", root=tmp_path)
    assert not dest.exists()
    assert [p.name for p in dest.parent.iterdir()] == ["tiny.gguf.partial"]
    partial = partial_of(dest)
    assert partial.stat().st_size == 2 * MiB
    assert partial.read_bytes() == DATA[: 2 * MiB]


def test_a_second_call_resumes(served: tuple[str, Served], tmp_path: Path) -> None:
    base, state = served
    state.cut_after = 2 * MiB
    dest = tmp_path / "tiny.gguf"
    with pytest.raises(ModelUnavailable):
        fetch(base + PATH, dest, Recorder(), name="tiny.gguf", root=tmp_path)
    have = partial_of(dest).stat().st_size
    assert have > 0

    narrate = Recorder()
    assert fetch(base + PATH, dest, narrate, name="tiny.gguf", root=tmp_path) == dest
    assert state.ranges == [None, f"bytes={have}-"]
    assert dest.read_bytes() == DATA
    assert not partial_of(dest).exists()
    assert narrate.actions()[0] == "download_resume"
    progress = narrate.progress()
    assert progress[-1]["done"] == progress[-1]["total"] == len(DATA)


def test_a_whole_partial_completes_on_416(served: tuple[str, Served], tmp_path: Path) -> None:
    base, state = served
    dest = tmp_path / "tiny.gguf"
    partial_of(dest).write_bytes(DATA)  # everything arrived, the rename did not happen
    sha = hashlib.sha256(DATA).hexdigest()
    assert fetch(base + PATH, dest, Recorder(), name="tiny.gguf", root=tmp_path, sha256=sha) == dest
    assert state.ranges == [f"bytes={len(DATA)}-"]
    assert dest.read_bytes() == DATA
    assert not partial_of(dest).exists()


def test_a_partial_longer_than_the_file_is_not_taken_for_a_download(
    served: tuple[str, Served], tmp_path: Path
) -> None:
    # The file on the server changed (now shorter) since the .partial was written: the server
    # answers 416 with "Content-Range: bytes */SIZE". The stale bytes must not become dest:
    # the download starts over and dest is exactly the server's file.
    base, _ = served
    dest = tmp_path / "tiny.gguf"
    partial_of(dest).write_bytes(DATA + b"stale tail")
    assert fetch(base + PATH, dest, Recorder(), name="tiny.gguf", root=tmp_path) == dest
    assert dest.read_bytes() == DATA
    assert not partial_of(dest).exists()


def test_wrong_sha256_is_corrupt_and_the_partial_is_deleted(
    served: tuple[str, Served], tmp_path: Path
) -> None:
    base, _ = served
    dest = tmp_path / "tiny.gguf"
    narrate = Recorder()
    with pytest.raises(ModelUnavailable, match="corrupt"):
        fetch(base + PATH, dest, narrate, name="tiny.gguf", root=tmp_path, sha256="0" * 64)
    assert not dest.exists()
    assert not partial_of(dest).exists()
    assert "download_verify" in narrate.actions()


def test_right_sha256_in_upper_case(served: tuple[str, Served], tmp_path: Path) -> None:
    base, _ = served
    dest = tmp_path / "tiny.gguf"
    sha = hashlib.sha256(DATA).hexdigest().upper()
    assert fetch(base + PATH, dest, Recorder(), name="tiny.gguf", root=tmp_path, sha256=sha) == dest
    assert sha256_of(dest) == sha.lower()


def test_http_error_status(served: tuple[str, Served], tmp_path: Path) -> None:
    base, _ = served
    dest = tmp_path / "missing.gguf"
    with pytest.raises(ModelUnavailable, match="404") as caught:
        fetch(base + "/nope.gguf", dest, Recorder(), name="missing.gguf", root=tmp_path)
    assert "missing.gguf" in str(caught.value)
    assert not dest.exists()
    assert not partial_of(dest).exists()


def test_progress_narration(
    served: tuple[str, Served], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(download, "PROGRESS_EVERY", 0.0)  # one per chunk, not per 0.5 s
    base, _ = served
    narrate = Recorder()
    fetch(base + PATH, tmp_path / "tiny.gguf", narrate, name="tiny.gguf", root=tmp_path)
    progress = narrate.progress()
    assert len(progress) >= 2
    for p in progress:
        assert set(p) == {"done", "total", "unit", "rate"}
        assert p["unit"] == "bytes"
        assert p["total"] == len(DATA)
        assert p["rate"] > 0
    done = [p["done"] for p in progress]
    assert done == sorted(set(done))  # strictly increasing
    assert done[-1] == len(DATA)
    messages = [m for a, m, _ in narrate.said if a == "download_progress"]
    assert "100%" in messages[-1]


def test_cancel_stops_and_keeps_the_partial(served: tuple[str, Served], tmp_path: Path) -> None:
    base, _ = served
    dest = tmp_path / "tiny.gguf"
    cancel = threading.Event()
    narrate = Recorder()

    def cancel_after_first_progress(
        action: str, message: str, progress: dict[str, Any] | None = None
    ) -> None:
        narrate(action, message, progress)
        if action == "download_progress":
            cancel.set()

    with pytest.raises(Cancelled):
        fetch(
            base + PATH,
            dest,
            cancel_after_first_progress,
            name="tiny.gguf",
            root=tmp_path,
            cancel=cancel,
        )
    assert not dest.exists()
    partial = partial_of(dest)
    assert partial.exists()
    assert 0 < partial.stat().st_size < len(DATA)
    assert partial.read_bytes() == DATA[: partial.stat().st_size]
