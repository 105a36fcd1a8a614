"""A loopback HTTP server that serves one model file the way a real host would: with
Content-Length and Range support, at a chosen speed, optionally dying midway."""

from __future__ import annotations

import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from steps.support.loopback_http import serve, stop

__all__ = ["ModelServer"]


class ModelServer:
    def __init__(self, path: Path, rate: float = 40e6) -> None:
        self.path = path
        self.rate = rate  # bytes per second
        self.die_after: int | None = None  # close the connection after this many bytes
        self.requests: list[str] = []  # the Range header of each GET ("" for none)
        self.any_path = False  # serve the file at every path (a URL of any shape)
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                if not server.any_path and self.path != f"/{server.path.name}":
                    self.send_error(404)
                    return
                server.requests.append(self.headers.get("Range", ""))
                size = server.path.stat().st_size
                start = 0
                if self.headers.get("Range", "").startswith("bytes="):
                    start = int(self.headers["Range"][6:].split("-")[0])
                    if start >= size:
                        self.send_response(416)
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(size - start))
                self.send_header("Content-Type", "application/octet-stream")
                self.end_headers()
                server._send(self, start)

        self.httpd = serve(Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_port}/{self.path.name}"

    def _send(self, handler: BaseHTTPRequestHandler, start: int) -> None:
        chunk = 256 * 1024
        sent = 0
        began = time.monotonic()
        with open(self.path, "rb") as f:
            f.seek(start)
            while block := f.read(chunk):
                if self.die_after is not None and start + sent >= self.die_after:
                    handler.connection.close()  # the host goes away mid-download
                    return
                try:
                    handler.wfile.write(block)
                except (BrokenPipeError, ConnectionResetError):
                    return
                sent += len(block)
                ahead = sent / self.rate - (time.monotonic() - began)
                if ahead > 0:
                    time.sleep(ahead)

    def close(self) -> None:
        stop(self.httpd)
