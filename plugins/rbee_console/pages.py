"""The console's files: ``/`` and ``/console/<file>``, shipped in the package (no build step).

They hold no data, so they are served without the API key (``opt={"public": True}``: the
page must load before it can ask for the key); everything they show comes from the API,
which the page calls with the key. A strict Content-Security-Policy allows scripts and
styles from the queen's own files only: no inline script, no third-party origin.
"""

from __future__ import annotations

import re
from functools import cache
from importlib.resources import files

from litestar import Response, get
from litestar.exceptions import NotFoundException
from litestar.params import FromPath

__all__ = ["CSP", "ROUTES"]

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'"
)
TYPES = {
    "html": "text/html; charset=utf-8",
    "js": "text/javascript; charset=utf-8",
    "css": "text/css; charset=utf-8",
    "svg": "image/svg+xml",
}
NAME = re.compile(r"[a-z0-9][a-z0-9-]*(\.[a-z0-9-]+)*\.(html|js|css|svg)")
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # Small files that change with the package: revalidate, never serve a stale page.
    "Cache-Control": "no-cache",
}


@cache
def _files() -> dict[str, bytes]:
    """Every file the console has, read once: a request looks its name up here and keeps
    nothing of its own (a name that is not here is a 404, whatever it is)."""
    static = files("rbee_console") / "static"
    return {
        item.name: item.read_bytes()
        for item in static.iterdir()
        if item.is_file() and NAME.fullmatch(item.name)
    }


def _file(name: str) -> Response[bytes]:
    body = _files().get(name)
    if body is None:
        shown = name if len(name) <= 80 else name[:80] + "..."
        raise NotFoundException(f"the console has no file {shown!r}")
    return Response(body, media_type=TYPES[name.rsplit(".", 1)[1]], headers=HEADERS)


@get("/", opt={"public": True}, include_in_schema=False)
async def index() -> Response[bytes]:
    return _file("index.html")


@get("/console/{name:str}", opt={"public": True}, include_in_schema=False)
async def asset(name: FromPath[str]) -> Response[bytes]:
    return _file(name)


ROUTES = [index, asset]
