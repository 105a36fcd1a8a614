"""Runs blocking backend generations in threads and hands their chunks to the event loop.

The event loop never runs inference. A model that batches (``max_batch`` > 1, see
``rbee_core.backends.LoadedModel``) gets that many generations at once, each in its own
thread; the rest wait here, in order. Closing the async iterator early (a client went away)
asks the backend to stop.

A job counts from the moment the worker accepts it (``claim``), before its generation
starts, so that ``retire`` (the hive unloading this worker) can never slip in between.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor

from rbee_core.backends import (
    BatchingModel,
    Chunk,
    ClosableModel,
    EmbeddingModel,
    Embeddings,
    GenerationParams,
    LoadedModel,
    QuantizedModel,
    StructuredModel,
)
from rbee_core.errors import InvalidRequest, WorkerRetired
from rbee_core.slots import Slots

__all__ = ["Runner"]

_END = object()


class Runner:
    def __init__(self, model: LoadedModel) -> None:
        self.model = model
        self.queue = Slots(max(1, model.max_batch) if isinstance(model, BatchingModel) else 1)
        self.jobs_served = 0
        self.idle_since = time.time()
        self.retired = False
        self._claims = 0  # jobs accepted whose generation has not ended yet
        self._threads = ThreadPoolExecutor(self.slots, thread_name_prefix="inference")

    @property
    def slots(self) -> int:
        """Generations it runs at once: the model's batch size."""
        return self.queue.capacity

    @property
    def quantization(self) -> str:
        """How the model's weights are held (``Q4_K_M``, ``bf16``...); empty if it does not
        say."""
        return self.model.quantization if isinstance(self.model, QuantizedModel) else ""

    @property
    def running(self) -> int:
        return self.queue.running

    @property
    def waiting(self) -> int:
        return self.queue.waiting

    @property
    def busy(self) -> bool:
        return self._claims > 0 or self.queue.load > 0

    def claim(self) -> Callable[[], None]:
        """Accept a job now (``WorkerRetired`` once retired); call the result when it is
        over, however it ended."""
        if self.retired:
            raise WorkerRetired(
                "this worker is being unloaded to make room for another model and takes no new jobs"
            )
        self._claims += 1
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self._claims -= 1
                if not self.busy:
                    self.idle_since = time.time()

        return release

    def retire(self, min_idle: float) -> str | None:
        """Stop taking jobs if none has run, waited or been accepted for ``min_idle``
        seconds; else why not (the worker keeps serving)."""
        if self.retired:
            return None
        if self.busy:
            return f"it has {max(self._claims, self.queue.load)} job(s) running or queued"
        idle = time.time() - self.idle_since
        if idle < min_idle:
            return f"it finished a job {idle:.1f} s ago"
        self.retired = True
        return None

    async def generate(self, prompt: str, params: GenerationParams) -> AsyncIterator[Chunk]:
        if params.json_schema is not None and not (
            isinstance(self.model, StructuredModel) and self.model.structured
        ):
            raise InvalidRequest(
                f"response_format: this worker's backend ({type(self.model).__name__}) cannot "
                "constrain its output to a JSON schema; use the torch or llamacpp backend",
                field="response_format",
            )
        try:
            async with self.queue.hold():
                try:
                    async for chunk in self._generate(prompt, params):
                        yield chunk
                finally:
                    self.jobs_served += 1
        finally:  # also when the client left mid-stream
            if not self.busy:
                self.idle_since = time.time()

    async def _generate(self, prompt: str, params: GenerationParams) -> AsyncIterator[Chunk]:
        loop = asyncio.get_running_loop()
        chunks: asyncio.Queue[object] = asyncio.Queue()
        cancel = threading.Event()

        def run() -> None:
            try:
                for chunk in self.model.generate(prompt, params, cancel.is_set):
                    loop.call_soon_threadsafe(chunks.put_nowait, chunk)
            except BaseException as exc:  # handed to the loop, re-raised there
                loop.call_soon_threadsafe(chunks.put_nowait, exc)
            finally:
                loop.call_soon_threadsafe(chunks.put_nowait, _END)

        done = loop.run_in_executor(self._threads, run)
        try:
            while (item := await chunks.get()) is not _END:
                if isinstance(item, BaseException):
                    raise item
                assert isinstance(item, Chunk)
                yield item
        finally:
            cancel.set()
            # Keep the slot until the thread has really stopped, even if we are cancelled.
            await asyncio.shield(done)

    async def embed(self, texts: list[str]) -> Embeddings:
        """A vector per text, computed in one of the model's slots (it waits its turn
        behind generations like a job does)."""
        if not isinstance(self.model, EmbeddingModel):
            raise InvalidRequest(
                f"this worker's backend ({type(self.model).__name__}) does not compute "
                "embeddings; use the torch or llamacpp backend",
                field="embed",
            )
        loop = asyncio.get_running_loop()
        try:
            async with self.queue.hold():
                try:
                    result: Embeddings = await loop.run_in_executor(
                        self._threads, self.model.embed, texts
                    )
                    return result
                finally:
                    self.jobs_served += 1
        finally:
            if not self.busy:
                self.idle_since = time.time()

    def close(self) -> None:
        self._threads.shutdown(wait=False, cancel_futures=True)
        if isinstance(self.model, ClosableModel):
            self.model.close()
