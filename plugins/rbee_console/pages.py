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
def _read(name: str) -> bytes | None:
    path = files("rbee_console") / "static" / name
    return path.read_bytes() if path.is_file() else None


def _file(name: str) -> Response[bytes]:
    body = _read(name) if NAME.fullmatch(name) else None
    if body is None:
        raise NotFoundException(f"the console has no file {name!r}")
    return Response(body, media_type=TYPES[name.rsplit(".", 1)[1]], headers=HEADERS)


@get("/", opt={"public": True}, include_in_schema=False)
async def index() -> Response[bytes]:
    return _file("index.html")


@get("/console/{name:str}", opt={"public": True}, include_in_schema=False)
async def asset(name: FromPath[str]) -> Response[bytes]:
    return _file(name)


ROUTES = [index, asset]
