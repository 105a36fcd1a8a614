"""A Hugging Face hub on loopback: the few endpoints huggingface_hub calls to download a
repository (``snapshot_download``) or one file of it (``hf_hub_download``), answered from
local files, so that ``HF_ENDPOINT`` can point at it and no test reaches the network.

- ``GET /api/models/{repo}/revision/{rev}``: the repository's commit (``sha``) and files;
- ``GET /api/models/{repo}/tree/{rev}?recursive=...``: its files with their sizes;
- ``HEAD /{repo}/resolve/{rev}/{path}``: the headers ``hf_hub_download`` requires before it
  downloads (``X-Repo-Commit``, ``ETag``, ``Content-Length``);
- ``GET /{repo}/resolve/{rev}/{path}``: the file (a ``Range: bytes=N-`` resumes);
- ``HEAD /``: what rbee's quick "is the hub reachable" probe asks.

An unknown repository or file gets the hub's 404 with its ``X-Error-Code``, which
huggingface_hub turns into ``RepositoryNotFoundError`` / ``RemoteEntryNotFoundError``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from steps.support.loopback_http import serve, stop

__all__ = ["FakeHub"]

_API = re.compile(r"/api/models/(?P<repo>[^/]+/[^/]+)/(?P<kind>revision|tree)/(?P<rev>[^/]+)")
_RESOLVE = re.compile(r"/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)")


@dataclass
class _Repo:
    name: str
    files: dict[str, Path]  # path in the repository -> file on this machine
    commit: str  # a 40-hex commit id, as the hub's (snapshot folders are named by it)
    etags: dict[str, str] = field(default_factory=dict)


def _etag(path: Path) -> str:
    """An id that changes when the file does. The hub's is a sha256 for large files, but
    huggingface_hub only names its cache's blobs by it: hashing 500 MB per scenario would
    check nothing more."""
    stat = path.stat()
    return hashlib.sha256(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}".encode()).hexdigest()


class FakeHub:
    """Serves ``repos`` (``{"org/name": {path in repo: local file}}``) at ``url``, in a
    thread; ``downloads`` lists the path of every file request (``org/name/path``)."""

    def __init__(self, repos: dict[str, dict[str, Path]]) -> None:
        self.repos = {
            name: _Repo(name, files, hashlib.sha1(name.encode()).hexdigest())
            for name, files in repos.items()
        }
        for repo in self.repos.values():
            repo.etags = {p: _etag(f) for p, f in repo.files.items()}
        self.downloads: list[str] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_HEAD(self) -> None:
                hub._answer(self)

            def do_GET(self) -> None:
                hub._answer(self)

        self.httpd = serve(Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_port}"

    def close(self) -> None:
        stop(self.httpd)

    def _answer(self, handler: BaseHTTPRequestHandler) -> None:
        path = unquote(urlsplit(handler.path).path)
        if path == "/":
            self._send(handler, 200, b"", {})
            return
        if match := _API.fullmatch(path):
            repo = self.repos.get(match["repo"])
            if repo is None:
                self._missing(handler, "RepoNotFound", "Repository not found")
            elif match["kind"] == "revision":
                info = {
                    "id": match["repo"],
                    "sha": repo.commit,
                    "private": False,
                    "siblings": [{"rfilename": p} for p in sorted(repo.files)],
                }
                self._json(handler, info)
            else:
                tree = [
                    {"type": "file", "path": p, "size": f.stat().st_size, "oid": repo.etags[p]}
                    for p, f in sorted(repo.files.items())
                ]
                self._json(handler, tree)
            return
        if match := _RESOLVE.fullmatch(path):
            repo = self.repos.get(match["repo"])
            if repo is None:
                self._missing(handler, "RepoNotFound", "Repository not found")
            elif match["path"] not in repo.files:
                self._missing(handler, "EntryNotFound", "Entry not found", repo.commit)
            else:
                self._file(handler, repo, match["path"])
            return
        self._send(handler, 404, b"Not Found", {})

    def _file(self, handler: BaseHTTPRequestHandler, repo: _Repo, name: str) -> None:
        body = handler.command == "GET"
        file = repo.files[name]
        size = file.stat().st_size
        start = 0
        ranged = re.fullmatch(r"bytes=(\d+)-", handler.headers.get("Range", ""))
        if ranged and body:
            start = min(int(ranged[1]), size)
        handler.send_response(206 if start else 200)
        handler.send_header("X-Repo-Commit", repo.commit)
        handler.send_header("ETag", f'"{repo.etags[name]}"')
        handler.send_header("Content-Length", str(size - start))
        if start:
            handler.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
        handler.send_header("Content-Type", "application/octet-stream")
        handler.end_headers()
        if not body:
            return
        self.downloads.append(f"{repo.name}/{name}")
        with open(file, "rb") as f, contextlib.suppress(BrokenPipeError, ConnectionResetError):
            handler.connection.sendfile(f, start)  # a client that gave up midway

    def _json(self, handler: BaseHTTPRequestHandler, data: Any) -> None:
        self._send(handler, 200, json.dumps(data).encode(), {"Content-Type": "application/json"})

    def _missing(
        self, handler: BaseHTTPRequestHandler, code: str, message: str, commit: str | None = None
    ) -> None:
        headers = {"X-Error-Code": code, "X-Error-Message": message}
        if commit is not None:
            headers["X-Repo-Commit"] = commit
        self._send(handler, 404, json.dumps({"error": message}).encode(), headers)

    @staticmethod
    def _send(
        handler: BaseHTTPRequestHandler,
        status: int,
        payload: bytes,
        headers: dict[str, str],
    ) -> None:
        handler.send_response(status)
        for key, value in headers.items():
            handler.send_header(key, value)
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        if handler.command != "HEAD":
            handler.wfile.write(payload)
