"""Continuous batching: one thread decodes every running sequence of a model in one forward.

Decode is memory-bound: reading the weights once for B sequences costs little more than for
one. So every step runs all admitted sequences together. A new sequence joins at the next
step (its prompt is prefilled alone, then its KV cache is merged into the batch's, left
padded), a finished one leaves at the step it ends, and one that is no longer wanted (a
cancel, a stop string) is dropped without disturbing the others.

Why not transformers' own ``ContinuousBatchingManager``: it samples with one global random
generator (no per-job seed, so a seeded job's output would depend on its neighbours) and
its paged cache is sized up front for the whole process. Measured side by side in
``benchmarks/bench_batching.py``.

The KV cache is bounded: a sequence is admitted only when the batch, padded to its longest
possible sequence, fits in ``kv_tokens`` token slots even if every sequence runs to its
``max_tokens``. Until then it waits, first come first served.

Prefill is compute-bound and stalls every running sequence while it runs, so one step
prefills at most ``prefill_tokens`` prompt tokens (always at least one sequence): a burst of
new jobs is spread over several steps instead of freezing the batch for all of them.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from transformers import DynamicCache

from rbee_core.errors import InvalidRequest
from rbee_torch.sampling import Sampler

__all__ = ["BatchEngine", "Sequence"]


@dataclass(frozen=True, slots=True)
class _Finished:
    reason: str  # "stop" (end of sequence), "length" or "cancelled"


class Sequence:
    """One generation in the engine. Iterate it (in any thread) for its new token ids, and
    for a notice (a ``str``) if it has to wait for room before it starts."""

    def __init__(
        self, prompt: list[int], max_tokens: int, sampler: Sampler, cancelled: Callable[[], bool]
    ) -> None:
        self.prompt = prompt
        self.max_tokens = max_tokens
        self.sampler = sampler
        self.generated = 0  # includes an end-of-sequence token, which is not emitted
        self.finish_reason: str | None = None
        self._cancelled = cancelled
        self._abandoned = False
        self._out: queue.SimpleQueue[int | str | _Finished | BaseException] = queue.SimpleQueue()
        # Engine-side state, touched only by the engine thread.
        self.done = False
        self.told_to_wait = False
        self.next_token = -1  # sampled, not yet in the cache
        self.length = 0  # tokens in the cache

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

    def end(self, reason: str) -> None:
        self.done = True
        self._out.put(_Finished(reason))

    def fail(self, exc: BaseException) -> None:
        self.done = True
        self._out.put(exc)


def _pad_left(t: torch.Tensor, n: int, dim: int) -> torch.Tensor:
    """``t`` with ``n`` zeros before it along ``dim`` (-2 for keys/values, -1 for the mask)."""
    if n == 0:
        return t
    return F.pad(t, (0, 0, n, 0) if dim == -2 else (n, 0))


class BatchEngine:
    """Runs the decode loop of one model for every sequence submitted to it."""

    def __init__(
        self,
        model: Any,
        eos_ids: set[int],
        max_batch: int,
        kv_tokens: int,
        prefill_tokens: int = 128,
    ) -> None:
        self.max_batch = max_batch
        self.kv_tokens = kv_tokens
        self.prefill_tokens = prefill_tokens
        self._model = model
        self._device = model.device
        self._eos = eos_ids
        self._pending: deque[Sequence] = deque()
        self._active: list[Sequence] = []
        self._cache: Any = None  # the batch's DynamicCache, one row per active sequence
        self._mask: torch.Tensor | None = None  # [rows, columns]: 1 = a real token
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="batch-decode", daemon=True)
        self._thread.start()

    @property
    def active(self) -> int:
        return len(self._active)

    @property
    def waiting(self) -> int:
        return len(self._pending)

    def submit(
        self, prompt: list[int], max_tokens: int, sampler: Sampler, cancelled: Callable[[], bool]
    ) -> Sequence:
        """Queue a sequence; it starts at the next step there is room for it."""
        seq = Sequence(prompt, max_tokens, sampler, cancelled)
        if seq.reserve > self.kv_tokens:
            raise InvalidRequest(
                f"the prompt ({len(prompt)} tokens) plus max_tokens ({max_tokens}) need "
                f"{seq.reserve} KV cache slots; this worker's cache holds {self.kv_tokens} "
                "(RBEE_KV_CACHE sets its size)",
                field="max_tokens",
            )
        with self._cond:
            if self._closed:
                raise RuntimeError("the model is shutting down")
            self._pending.append(seq)
            self._cond.notify()
        return seq

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join(timeout=10)

    # -- the engine thread --------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not (self._closed or self._pending or self._active):
                    self._cond.wait()
                if self._closed:
                    for seq in [*self._pending, *self._active]:
                        seq.end("cancelled")
                    return
                joining = self._admit()
            try:
                with torch.inference_mode():
                    self._step(joining)
            except Exception as exc:
                # A failed decode step fails the sequences in it, not the worker: start afresh.
                for seq in [*self._active, *joining]:
                    if not seq.done:
                        seq.fail(exc)
                self._active, self._cache, self._mask = [], None, None

    def _admit(self) -> list[Sequence]:
        """Take waiting sequences, in order, while the batch and its cache have room."""
        for seq in [s for s in self._pending if not s.wanted()]:
            self._pending.remove(seq)
            seq.end("cancelled")
        joining: list[Sequence] = []
        widest = max((s.reserve for s in self._active), default=0)
        prefill = 0
        while self._pending and (not joining or prefill < self.prefill_tokens):
            seq = self._pending[0]
            rows = len(self._active) + len(joining) + 1
            widest_after = max(widest, seq.reserve)
            if rows > self.max_batch or rows * widest_after > self.kv_tokens:
                break
            widest = widest_after
            prefill += len(seq.prompt)
            joining.append(self._pending.popleft())
        self._tell_waiting(joining)
        return joining

    def _tell_waiting(self, joining: list[Sequence]) -> None:
        """Say once to each sequence left waiting why it waits (not for the prefill budget,
        which lets it in at the next step)."""
        rows = len(self._active) + len(joining)
        if rows >= self.max_batch:
            why = f"the batch is full ({rows} jobs running)"
        else:
            used = rows * max((s.reserve for s in [*self._active, *joining]), default=0)
            if not self._pending or used + self._pending[0].reserve <= self.kv_tokens:
                return
            why = (
                f"the KV cache is full ({rows} jobs may use {used:,} of its "
                f"{self.kv_tokens:,} token slots)"
            )
        for ahead, seq in enumerate(self._pending):
            if not seq.told_to_wait:
                seq.tell(f"waiting for room: {why}; {ahead} job(s) ahead of this one")

    def _step(self, joining: list[Sequence]) -> None:
        for seq in self._active:
            if not seq.wanted():
                seq.end("cancelled")
        for seq in joining:
            try:
                self._prefill(seq)
            except Exception as exc:  # this prompt's fault: it alone fails
                if not seq.done:
                    seq.fail(exc)
        self._remove_done()
        if self._active:
            self._decode()
            self._remove_done()

    def _prefill(self, seq: Sequence) -> None:
        ids = torch.tensor([seq.prompt], device=self._device)
        out = self._model(input_ids=ids, cache=DynamicCache(), use_cache=True)
        seq.length = len(seq.prompt)
        self._merge(out.cache, seq.length)
        self._active.append(seq)
        self._accept(seq, seq.sampler(out.logits[:, -1, :]))

    def _merge(self, cache: Any, length: int) -> None:
        """Add a prefilled sequence's cache as a new last row, left-padding the shorter side."""
        ones = torch.ones((1, length), dtype=torch.long, device=self._device)
        if self._cache is None or self._mask is None:
            self._cache, self._mask = cache, ones
            return
        width = self._mask.shape[1]
        total = max(width, length)
        for old, new in zip(self._cache.layers, cache.layers, strict=True):
            old.keys = torch.cat(
                [_pad_left(old.keys, total - width, -2), _pad_left(new.keys, total - length, -2)]
            )
            old.values = torch.cat(
                [
                    _pad_left(old.values, total - width, -2),
                    _pad_left(new.values, total - length, -2),
                ]
            )
        self._mask = torch.cat(
            [_pad_left(self._mask, total - width, -1), _pad_left(ones, total - length, -1)]
        )

    def _decode(self) -> None:
        assert self._mask is not None
        rows = len(self._active)
        ids = torch.tensor([[s.next_token] for s in self._active], device=self._device)
        positions = torch.tensor([[s.length] for s in self._active], device=self._device)
        self._mask = torch.cat(
            [self._mask, torch.ones((rows, 1), dtype=torch.long, device=self._device)], dim=1
        )
        out = self._model(
            input_ids=ids,
            attention_mask=self._mask,
            position_ids=positions,
            cache=self._cache,
            use_cache=True,
        )
        logits = out.logits[:, -1, :]
        greedy = logits.argmax(dim=-1).tolist()
        for row, seq in enumerate(self._active):
            seq.length += 1
            token = greedy[row] if seq.sampler.greedy else seq.sampler(logits[row : row + 1])
            self._accept(seq, token)

    def _accept(self, seq: Sequence, token: int) -> None:
        seq.generated += 1
        if token in self._eos:
            seq.end("stop")
            return
        seq.emit(token)
        if seq.generated >= seq.max_tokens:
            seq.end("length")
        seq.next_token = token

    def _remove_done(self) -> None:
        keep = [row for row, seq in enumerate(self._active) if not seq.done]
        if len(keep) == len(self._active):
            return
        self._active = [self._active[row] for row in keep]
        if not keep:
            self._cache, self._mask = None, None
            return
        assert self._mask is not None
        index = torch.tensor(keep, device=self._device)
        mask = self._mask[index]
        # Columns that are padding in every remaining row are dead weight: drop them.
        first = int(mask.any(dim=0).nonzero()[0])
        self._mask = mask[:, first:]
        for layer in self._cache.layers:
            layer.keys = layer.keys[index, :, first:, :]
            layer.values = layer.values[index, :, first:, :]
