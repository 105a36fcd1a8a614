"""HTTP calls to the queen, with its JSON errors turned into one-line messages.

httpx is imported when a client is made, not with this module: every command's module
imports this one, and httpx (with the CLI it brings) would cost every ``rbee-keeper``
start about 0.1 s, ``--help`` and ``--version`` included.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import click

from rbee_core.credentials import auth_headers
from rbee_core.events import DONE
from rbee_core.terminal_text import printable

if TYPE_CHECKING:
    import httpx

__all__ = ["QueenClient", "QueenUnreachable", "fetch_list"]


class QueenUnreachable(click.ClickException):
    pass


def _error_message(response: httpx.Response) -> str:
    try:
        error = response.json()["error"]
        return printable(str(error["message"]))
    except (ValueError, KeyError, TypeError):
        return printable(f"the queen answered HTTP {response.status_code}: {response.text[:200]}")


class QueenClient:
    def __init__(self, url: str, timeout: float = 10.0) -> None:
        import httpx

        self.url = url.rstrip("/")
        # Streams stay quiet while a model loads: no read timeout on them.
        self.http = httpx.Client(
            base_url=self.url,
            timeout=httpx.Timeout(timeout, read=None),
            headers=auth_headers(),
            # Loading the CA certificates takes 70 ms here, for nothing on a plain http URL
            # (the usual loopback queen): every keeper command paid it.
            verify=self.url.startswith("https:"),
        )

    def __enter__(self) -> QueenClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        import httpx

        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise QueenUnreachable(f"cannot reach the queen at {self.url}: {exc}") from exc
        if response.is_error:
            raise click.ClickException(_error_message(response))
        return response.json()

    def health(self, timeout: float = 2.0) -> dict[str, Any] | None:
        """The queen's health, or None if nothing answers."""
        import httpx

        try:
            response = self.http.get("/health", timeout=timeout)
            return dict(response.json()) if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError):
            return None

    def submit(self, job: dict[str, Any]) -> dict[str, str]:
        return dict(self._call("POST", "/jobs", json=job))

    def get(self, path: str) -> Any:
        return self._call("GET", path)

    def post(self, path: str, body: dict[str, Any]) -> Any:
        return self._call("POST", path, json=body)

    def delete(self, path: str) -> Any:
        return self._call("DELETE", path)

    def shutdown(self) -> None:
        self._call("POST", "/shutdown", json={})  # every POST must be JSON (docs/api.md)

    def events(
        self,
        sse_url: str,
        on_retry: Callable[[int, str], None] | None = None,
        retries: int = 5,
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """(event type, payload) for each event of a job's stream, until ``[DONE]``.

        A dropped connection is resumed with ``Last-Event-ID`` (the queen replays exactly
        the events after it), up to ``retries`` times in a row, with backoff; ``on_retry``
        hears of each attempt.
        """
        last = 0
        failures = 0
        while True:
            try:
                headers = {"Last-Event-ID": str(last)} if last else {}
                for event_id, event, data in self._sse("GET", sse_url, None, headers):
                    last, failures = event_id or last, 0
                    yield event, data
                return
            except QueenUnreachable as exc:
                failures += 1
                if failures > retries:
                    raise
                if on_retry is not None:
                    on_retry(failures, str(exc))
                time.sleep(min(0.25 * 2**failures, 5.0))

    def stream(
        self, method: str, path: str, body: dict[str, Any] | None = None
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """(event type, payload) for each event of an SSE answer, until ``[DONE]``."""
        for _, event, data in self._sse(method, path, body, {}):
            yield event, data

    def _sse(
        self, method: str, path: str, body: dict[str, Any] | None, headers: dict[str, str]
    ) -> Iterator[tuple[int, str, dict[str, Any]]]:
        import httpx
        from httpx_sse import connect_sse

        # The queen sends a keep-alive comment at least every 15 s: a minute of silence means
        # a dead connection.
        timeout = httpx.Timeout(10.0, read=60.0)
        try:
            with connect_sse(
                self.http, method, path, json=body, headers=headers, timeout=timeout
            ) as source:
                if source.response.is_error:
                    source.response.read()
                    raise click.ClickException(_error_message(source.response))
                for sse in source.iter_sse():
                    if sse.data == DONE:
                        return
                    if not sse.data:  # a keep-alive comment: no event of the job
                        continue
                    yield int(sse.id) if sse.id else 0, sse.event, json.loads(sse.data)
        except httpx.TransportError as exc:
            raise QueenUnreachable(
                f"lost the connection to the queen at {self.url}: {exc}"
            ) from exc
        raise QueenUnreachable("the queen's stream ended before [DONE]")


def fetch_list(queen_url: str, path: str, key: str, as_json: bool) -> list[dict[str, Any]] | None:
    """The list under ``key`` of the queen's answer to ``GET path``; with ``--json`` the list
    is printed as JSON instead, and None returned (the command has nothing left to do)."""
    with QueenClient(queen_url) as client:
        items: list[dict[str, Any]] = client.get(path)[key]
    if as_json:
        click.echo(json.dumps(items, indent=2))
        return None
    return items
