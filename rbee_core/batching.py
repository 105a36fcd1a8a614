"""What every continuous-batching engine shares, whatever lays out its batch and KV cache.

A job's thread submits a ``Sequence`` and iterates it for token ids; one engine thread per
model decodes every admitted sequence together, step after step. A new sequence joins at
the next step there is room for it, a finished one leaves at the step it ends, and one that
is no longer wanted (a cancel, a stop string) is dropped without disturbing the others.

The KV cache is bounded: a sequence is admitted only while every admitted sequence could
still run to its ``max_tokens`` (how many slots that takes depends on the engine's layout:
``BatchLoop.slots_needed``). Until then it waits, first come first served, and is told why;
one that could never fit is refused at once, naming both sizes. So is one that would run
past the model's trained context: the rule every engine shares (``BatchLoop.refusal``).

Every engine has the same shape: its backend's ``load`` settles its ``EngineSettings`` once
(from the environment and the model) and passes them to its constructor; each sequence
brings its own ``TokenSampler``, which the engine closes when the sequence leaves.
"""

from __future__ import annotations

import queue
import threading
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from rbee_core.backends import Chunk
from rbee_core.errors import InvalidRequest
from rbee_core.messages import FinishReason
from rbee_core.stops import StopMatcher

__all__ = [
    "BatchLoop",
    "EngineSettings",
    "Sequence",
    "TokenSampler",
    "beyond_context",
    "text_chunks",
]

L_contra = TypeVar("L_contra", contravariant=True)


class TokenSampler(Protocol[L_contra]):
    """One sequence's own choice of its next tokens (its seed, warpers, JSON Schema
    constraint), so that its answer does not depend on its neighbours in the batch.

    ``L_contra`` is how its engine hands it one row of logits: a ``[1, vocab]`` tensor on
    torch, a row index of the last batch on llama.cpp.
    """

    def sample(self, logits: L_contra) -> int:
        """The next token, from this sequence's row of logits."""
        ...

    def close(self) -> None:
        """Free what it holds outside Python. The engine calls it once the sequence has left
        (or was refused); it may be called again."""
        ...


S = TypeVar("S", bound="TokenSampler[Any]")  # the engine's per-sequence sampler


@dataclass(frozen=True, slots=True)
class EngineSettings:
    """How an engine is sized, settled once by its backend's ``load`` (``RBEE_MAX_BATCH`` and
    ``RBEE_KV_CACHE`` from the environment, the rest from the model) and passed to the
    engine's constructor: no engine reads the environment."""

    max_batch: int  # sequences decoded together (llama.cpp: its slots)
    kv_tokens: int  # KV cache token slots, as the engine's layout counts them (slots_needed)
    context_length: int  # the model's trained context: no sequence may run past it


@dataclass(frozen=True, slots=True)
class _Finished:
    reason: FinishReason


class Sequence(Generic[S]):
    """One generation in an engine. Iterate it (in any thread) for its new token ids, and
    for a notice (a ``str``) if it has to wait for room before it starts."""

    def __init__(
        self, prompt: list[int], max_tokens: int, sampler: S, cancelled: Callable[[], bool]
    ) -> None:
        self.prompt = prompt
        self.max_tokens = max_tokens
        self.sampler = sampler
        self.generated = 0  # includes an end-of-sequence token, which is not emitted
        self.finish_reason: FinishReason | None = None
        self._cancelled = cancelled
        self._abandoned = False
        self._out: queue.SimpleQueue[int | str | _Finished | BaseException] = queue.SimpleQueue()
        # Engine-side state, touched only by the engine thread.
        self.done = False
        self.told_to_wait = False
        self.next_token = -1  # sampled, not yet in the cache
        self.length = 0  # tokens in the cache
        self.cached_tokens = 0  # prompt tokens found in the cache when it started

    @property
    def reserve(self) -> int:
        """Cache slots this sequence may need: its prompt plus every token it may generate."""
        return len(self.prompt) + self.max_tokens

    def abandon(self) -> None:
        """Stop generating (the reader has all it wants); the engine drops it next step."""
        self._abandoned = True

    def wanted(self) -> bool:
        return not self._abandoned and not self._cancelled()

    def __iter__(self) -> Iterator[int | str]:
        while True:
            item = self._out.get()
            if isinstance(item, _Finished):
                self.finish_reason = item.reason
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    # -- engine side --------------------------------------------------------------------

    def emit(self, token: int) -> None:
        self._out.put(token)

    def tell(self, notice: str) -> None:
        self.told_to_wait = True
        self._out.put(notice)

    def end(self, reason: FinishReason) -> None:
        self.done = True
        self._out.put(_Finished(reason))

    def fail(self, exc: BaseException) -> None:
        self.done = True
        self._out.put(exc)

    def accept(self, token: int, end_of_sequence: bool) -> None:
        """A token sampled for this sequence: emit it, or end on end-of-sequence or length."""
        self.generated += 1
        if end_of_sequence:
            self.end(FinishReason.STOP)
            return
        self.emit(token)
        if self.generated >= self.max_tokens:
            self.end(FinishReason.LENGTH)
        self.next_token = token


def text_chunks(
    seq: Sequence[S],
    push: Callable[[int], str],
    stop: tuple[str, ...],
    flush: Callable[[], str] = str,
) -> Iterator[Chunk]:
    """A sequence's tokens as a backend's chunks, in the job's own thread: ``push`` turns a
    token into the text it completes (whole characters only), ``flush`` gives what is left
    at the end. Notices pass through; stop strings may span tokens; the last chunk has the
    finish reason and the counts. A reader that stops early abandons the sequence."""
    stops = StopMatcher(stop)
    finish: FinishReason | None = None
    try:
        for token in seq:
            if isinstance(token, str):
                yield Chunk(text="", notice=token)
                continue
            text, hit = stops.feed(push(token))
            if text:
                yield Chunk(text=text)
            if hit:
                finish = FinishReason.STOP
                break
        else:
            text, hit = stops.feed(flush())
            if text:
                yield Chunk(text=text)
            finish = FinishReason.STOP if hit else None
    finally:
        seq.abandon()  # a stop string, or the reader went away: free the batch slot
    finish = finish or seq.finish_reason or FinishReason.CANCELLED
    yield from stops.closing_chunks(finish, len(seq.prompt), seq.generated, seq.cached_tokens)


def beyond_context(seq: Sequence[Any], context_length: int) -> str | None:
    """Why ``seq`` would run past a model's trained context of ``context_length`` positions,
    or None: its prompt plus ``max_tokens`` must fit, on every engine alike."""
    if seq.reserve <= context_length:
        return None
    return (
        f"the prompt ({len(seq.prompt)} tokens) plus max_tokens ({seq.max_tokens}) "
        f"need {seq.reserve} positions; the model handles {context_length} "
        "(its training context)"
    )


class BatchLoop(ABC, Generic[S]):
    """The engine thread of one model, and its admission policy. An engine implements
    ``slots_needed`` (its KV layout), ``step`` (one forward for the batch) and ``reset``.

    ``prefill_tokens`` is the engine's own trait, not a setting: the prompt tokens one step
    may prefill (always at least one sequence).
    """

    def __init__(self, settings: EngineSettings, prefill_tokens: int) -> None:
        self.settings = settings
        self.max_batch = settings.max_batch
        self.kv_tokens = settings.kv_tokens
        self.context_length = settings.context_length
        self.prefill_tokens = prefill_tokens
        self._pending: deque[Sequence[S]] = deque()
        self._active: list[Sequence[S]] = []
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="batch-decode", daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def active(self) -> int:
        return len(self._active)

    @property
    def waiting(self) -> int:
        return len(self._pending)

    @abstractmethod
    def slots_needed(self, seqs: list[Sequence[S]]) -> int:
        """KV cache slots ``seqs`` need together if each runs to its ``max_tokens``."""

    @abstractmethod
    def step(self, joining: list[Sequence[S]]) -> None:
        """Run one step: drop unwanted sequences, start ``joining``, decode the rest."""

    @abstractmethod
    def reset(self) -> None:
        """Forget the cache (after a failed step, every sequence in it has been released)."""

    def release(self, seq: Sequence[S]) -> None:
        """Called for each sequence as it leaves the engine for good: ended, cancelled while
        waiting, failed, or shut down. Closes its sampler; engines free what they hold for
        it here too (and call this)."""
        seq.sampler.close()

    def refusal(self, seq: Sequence[S]) -> str | None:
        """Why ``seq`` can never run here, or None: it would run past the model's trained
        context (the same rule on every engine), or it can never fit in the cache."""
        return beyond_context(seq, self.context_length) or self.cache_refusal(seq)

    def cache_refusal(self, seq: Sequence[S]) -> str | None:
        """Why ``seq`` can never fit in the KV cache, or None; an engine may word it for its
        own layout."""
        if seq.reserve <= self.kv_tokens:
            return None
        return (
            f"the prompt ({len(seq.prompt)} tokens) plus max_tokens ({seq.max_tokens}) need "
            f"{seq.reserve} KV cache slots; this worker's cache holds {self.kv_tokens} "
            "(RBEE_KV_CACHE sets its size)"
        )

    def submit(
        self, prompt: list[int], max_tokens: int, sampler: S, cancelled: Callable[[], bool]
    ) -> Sequence[S]:
        """Queue a sequence; it starts at the next step there is room for it. The engine
        owns ``sampler`` from here: it closes it, also when it refuses the sequence."""
        seq = Sequence(prompt, max_tokens, sampler, cancelled)
        why = self.refusal(seq)
        with self._cond:
            if why is None and not self._closed:
                self._pending.append(seq)
                self._cond.notify()
                return seq
        sampler.close()
        if why is not None:
            raise InvalidRequest(why, field="max_tokens")
        raise RuntimeError("the model is shutting down")

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    # -- the engine thread --------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not (self._closed or self._pending or self._active):
                    self._cond.wait()
                if self._closed:
                    for seq in [*self._pending, *self._active]:
                        seq.end(FinishReason.CANCELLED)
                        self.release(seq)
                    return
                joining = self._admit()
            try:
                self.step(joining)
            except Exception as exc:
                # A failed step fails the sequences in it, not the worker: start afresh.
                for seq in dict.fromkeys([*self._active, *joining]):
                    if not seq.done:
                        seq.fail(exc)
                    self.release(seq)
                self._active = []
                self.reset()

    def _admit(self) -> list[Sequence[S]]:
        """Take waiting sequences, in order, while the batch and its cache have room and
        this step's prefill budget lasts (always at least one sequence)."""
        for seq in [s for s in self._pending if not s.wanted()]:
            self._pending.remove(seq)
            seq.end(FinishReason.CANCELLED)
            self.release(seq)
        joining: list[Sequence[S]] = []
        prefill = 0
        while self._pending and (not joining or prefill < self.prefill_tokens):
            seq = self._pending[0]
            after = [*self._active, *joining, seq]
            if len(after) > self.max_batch or self.slots_needed(after) > self.kv_tokens:
                break
            prefill += len(seq.prompt)
            joining.append(self._pending.popleft())
        self._tell_waiting(joining)
        return joining

    def _tell_waiting(self, joining: list[Sequence[S]]) -> None:
        """Say once to each sequence left waiting why it waits (not for the prefill budget,
        which lets it in at the next step)."""
        running = [*self._active, *joining]
        if len(running) >= self.max_batch:
            why = f"the batch is full ({len(running)} jobs running)"
        else:
            if not self._pending or self.slots_needed([*running, self._pending[0]]) <= (
                self.kv_tokens
            ):
                return
            why = (
                f"the KV cache is full ({len(running)} jobs may use "
                f"{self.slots_needed(running):,} of its {self.kv_tokens:,} token slots)"
            )
        for ahead, seq in enumerate(self._pending):
            if not seq.told_to_wait:
                seq.tell(f"waiting for room: {why}; {ahead} job(s) ahead of this one")
