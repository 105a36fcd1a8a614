"""A plain HTTP server on a free loopback port, serving from a daemon thread: what the
specs' stand-ins for other hosts (a model host, a Hugging Face hub) are built on."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = ["serve", "stop"]


def serve(handler: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
    """``handler`` served on ``127.0.0.1`` at a port of the system's choosing
    (``server_port``), one thread per request, until ``stop``."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


def stop(httpd: ThreadingHTTPServer) -> None:
    httpd.shutdown()
    httpd.server_close()
