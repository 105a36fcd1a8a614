"""Runs a blocking backend generation in a thread and hands its chunks to the event loop.

The event loop never runs inference: one dedicated thread does, one generation at a time.
Closing the async iterator early (a client went away) asks the backend to stop.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

from rbee_core.backends import Chunk, GenerationParams, LoadedModel

__all__ = ["Runner"]

_END = object()


class Runner:
    def __init__(self, model: LoadedModel) -> None:
        self.model = model
        self.lock = asyncio.Lock()
        self.jobs_served = 0
        self.idle_since = time.time()
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inference")

    @property
    def busy(self) -> bool:
        return self.lock.locked()

    async def generate(self, prompt: str, params: GenerationParams) -> AsyncIterator[Chunk]:
        async with self.lock:
            loop = asyncio.get_running_loop()
            queue: asyncio.Queue[object] = asyncio.Queue()
            cancel = threading.Event()

            def run() -> None:
                try:
                    for chunk in self.model.generate(prompt, params, cancel.is_set):
                        loop.call_soon_threadsafe(queue.put_nowait, chunk)
                except BaseException as exc:  # handed to the loop, re-raised there
                    loop.call_soon_threadsafe(queue.put_nowait, exc)
                finally:
                    loop.call_soon_threadsafe(queue.put_nowait, _END)

            done = loop.run_in_executor(self._thread, run)
            try:
                while (item := await queue.get()) is not _END:
                    if isinstance(item, BaseException):
                        raise item
                    assert isinstance(item, Chunk)
                    yield item
            finally:
                cancel.set()
                # Keep the lock until the thread has really stopped, even if we are cancelled.
                await asyncio.shield(done)
                self.jobs_served += 1
                self.idle_since = time.time()

    def close(self) -> None:
        self._thread.shutdown(wait=False, cancel_futures=True)
