"""``GET /events``: the queen's feed as Server-Sent Events, for as long as the client stays.

A new client first gets a ``snapshot`` (the hives, recent and live jobs, the charts'
history), then every change. A client that reconnects with ``Last-Event-ID`` gets the
events it missed, or a new snapshot when they are no longer kept.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any
from weakref import WeakKeyDictionary

from litestar import Request, get
from litestar.response import ServerSentEventMessage, Stream

from rbee_console.feed import Feed, FeedEvent
from rbee_core.queen_api import QueenApi
from rbee_core.settings import SSE_KEEPALIVE
from rbee_http.server import stopping
from rbee_http.sse import event_stream, last_event_id
from rbee_queen.dependencies import QueenApiDep

__all__ = ["ROUTES", "feed_of"]

_feeds: WeakKeyDictionary[QueenApi, Feed] = WeakKeyDictionary()


def feed_of(queen: QueenApi) -> Feed:
    """The queen's feed, started if it was not yet."""
    feed = _feeds.get(queen)
    if feed is None:
        feed = _feeds[queen] = Feed(queen)
    feed.start()
    return feed


def _encode(events: list[FeedEvent]) -> bytes:
    return b"".join(
        ServerSentEventMessage(data=e.data, event=e.type, id=e.id).encode() for e in events
    )


async def _follow(feed: Feed, after: int) -> AsyncIterator[bytes]:
    ready = feed.since(after) if after else None
    quiet = 0.0  # seconds without an event
    keepalive = SSE_KEEPALIVE.read()
    while not stopping():  # the feed never ends by itself: end it when the queen stops
        if ready is None:  # new, or back after too long: start over from the state now
            after = feed.last_id
            ready = [FeedEvent(after, "snapshot", json.dumps(feed.snapshot()))]
        if ready:
            yield _encode(ready)
            after = ready[-1].id
        # Short waits, so a stopping queen is noticed within a second.
        if await feed.wait(after, 1.0):
            quiet = 0.0
        else:
            quiet += 1.0
            if quiet >= keepalive:
                quiet = 0.0
                yield ServerSentEventMessage(data=None, comment="keep-alive").encode()
        ready = feed.since(after)


@get("/events")
async def events(request: Request[Any, Any, Any], queen: QueenApiDep) -> Stream:
    """The cluster's and the jobs' changes, as SSE (docs/api.md, "Events")."""
    return event_stream(_follow(feed_of(queen), last_event_id(request)))


ROUTES = [events]
