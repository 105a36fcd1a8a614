"""Continuous batching on torch: one thread decodes every running sequence of a model in one
forward.

Decode is memory-bound: reading the weights once for B sequences costs little more than for
one. So every step runs all admitted sequences together (``rbee_core.batching`` holds what
every engine shares: sequences, admission, the engine thread). A new sequence's prompt is
prefilled alone, then its KV cache is merged into the batch's, left padded; a finished or
unwanted one's row is dropped, and all-padding columns with it.

Why not transformers' own ``ContinuousBatchingManager``: it samples with one global random
generator (no per-job seed, so a seeded job's output would depend on its neighbours) and
its paged cache is sized up front for the whole process. Measured side by side in
``benchmarks/bench_batching.py``.

The cache is padded to the longest row, so the batch needs ``rows x longest reserve``
slots. Prefill is compute-bound and stalls every running sequence while it runs, so one
step prefills at most ``prefill_tokens`` prompt tokens (always at least one sequence): a
burst of new jobs is spread over several steps instead of freezing the batch for all of them.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from transformers import DynamicCache

from rbee_core import batching
from rbee_core.batching import BatchLoop, EngineSettings
from rbee_core.messages import FinishReason
from rbee_torch.sampling import Sampler

__all__ = ["BatchEngine", "Sequence"]

Sequence = batching.Sequence[Sampler]


def _pad_left(t: torch.Tensor, n: int, dim: int) -> torch.Tensor:
    """``t`` with ``n`` zeros before it along ``dim`` (-2 for keys/values, -1 for the mask)."""
    if n == 0:
        return t
    return F.pad(t, (0, 0, n, 0) if dim == -2 else (n, 0))


class BatchEngine(BatchLoop[Sampler]):
    """Runs the decode loop of one model for every sequence submitted to it."""

    def __init__(
        self, model: Any, eos_ids: set[int], settings: EngineSettings, prefill_tokens: int = 128
    ) -> None:
        super().__init__(settings, prefill_tokens)
        self._model = model
        self._device = model.device
        self.eos_ids = eos_ids
        self._cache: Any = None  # the batch's DynamicCache, one row per active sequence
        self._mask: torch.Tensor | None = None  # [rows, columns]: 1 = a real token
        self.start()

    def slots_needed(self, seqs: list[Sequence]) -> int:
        """Every row is padded to the longest: rows x the longest reserve."""
        return len(seqs) * max((s.reserve for s in seqs), default=0)

    def reset(self) -> None:
        self._cache, self._mask = None, None

    def step(self, joining: list[Sequence]) -> None:
        with torch.inference_mode():
            self._step(joining)

    def _step(self, joining: list[Sequence]) -> None:
        for seq in self._active:
            if not seq.wanted():
                seq.end(FinishReason.CANCELLED)
        for seq in joining:
            try:
                self._prefill(seq)
            except Exception as exc:  # this prompt's fault: it alone fails
                if not seq.done:
                    seq.fail(exc)
                if seq not in self._active:  # else it leaves with the batch's done rows
                    self.release(seq)
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
        self._accept(seq, seq.sampler.sample(out.logits[:, -1, :]))

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
            token = greedy[row] if seq.sampler.greedy else seq.sampler.sample(logits[row : row + 1])
            self._accept(seq, token)

    def _accept(self, seq: Sequence, token: int) -> None:
        seq.accept(token, token in self.eos_ids)

    def _remove_done(self) -> None:
        keep = [row for row, seq in enumerate(self._active) if not seq.done]
        if len(keep) == len(self._active):
            return
        for seq in self._active:
            if seq.done:
                self.release(seq)
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
