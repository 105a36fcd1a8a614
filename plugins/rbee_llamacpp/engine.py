"""Continuous batching on llama.cpp: every running job of a model in one ``llama_batch``.

The KV cache has one slot per sequence, as in llama.cpp's own server (``-np``): a job
takes a free slot, its prompt is fed in fixed chunks, then one token of every decoding
sequence goes into one ``llama_decode`` a step, and each samples its row of logits with its
own sampler chain. A finished or unwanted sequence frees its slot at once.

A job's tokens are the same alone and in any batch. llama.cpp picks kernels by the shape of
a batch, so every call has one of the same few shapes whatever else runs:

- a prompt chunk is decoded on its own, always cut at the same places;
- a lone decoding sequence past ``BALLAST_FROM`` tokens gets a ballast row (one token in a
  free slot, no logits, dropped after the call): flash attention splits a single query's
  keys across threads once they pass 512 cells, and batches never take that path;
- per-row kernels only (``library.py``: no repacked weights, no tiled matmul).
"""

from __future__ import annotations

from rbee_core import batching
from rbee_core.batching import BatchLoop
from rbee_llamacpp.library import Context, Vocab
from rbee_llamacpp.sampling import Sampler

__all__ = ["BALLAST_FROM", "PREFILL_CHUNK", "LlamaEngine", "Sequence"]

Sequence = batching.Sequence[Sampler]

PREFILL_CHUNK = 256  # prompt tokens per decode call
BALLAST_FROM = 224  # below 256 cells, ggml's single-query attention path is the usual one


class LlamaEngine(BatchLoop[Sampler]):
    """Runs the decode loop of one llama.cpp context for every sequence submitted to it.

    ``kv_tokens`` is what one slot holds: a sequence needs its prompt plus ``max_tokens``
    in it, and waits for a free slot (``max_batch`` of them).
    """

    def __init__(
        self, context: Context, vocab: Vocab, slots: int, slot_tokens: int, context_length: int
    ) -> None:
        super().__init__(slots, slot_tokens, prefill_tokens=PREFILL_CHUNK)
        self._context = context
        self._vocab = vocab
        self._context_length = context_length
        self._free = list(range(slots - 1, -1, -1))
        self._slot: dict[int, int] = {}  # id(sequence) -> its slot (seq id in the cache)
        self.start()

    def slots_needed(self, seqs: list[Sequence]) -> int:
        """Each sequence has a slot of its own: the largest reserve must fit in one."""
        return max((s.reserve for s in seqs), default=0)

    def refusal(self, seq: Sequence) -> str | None:
        if seq.reserve > self._context_length:
            return (
                f"the prompt ({len(seq.prompt)} tokens) plus max_tokens ({seq.max_tokens}) "
                f"need {seq.reserve} positions; the model handles {self._context_length} "
                "(its training context)"
            )
        if seq.reserve > self.kv_tokens:
            total = self.kv_tokens * self.max_batch
            fewer = total // seq.reserve
            hint = f"; RBEE_MAX_BATCH={fewer} gives each job {total // fewer:,}" if fewer else ""
            return (
                f"the prompt ({len(seq.prompt)} tokens) plus max_tokens ({seq.max_tokens}) "
                f"need {seq.reserve} KV cache slots; this worker's cache holds "
                f"{self.kv_tokens:,} for each of its {self.max_batch} jobs at once "
                f"(RBEE_KV_CACHE sets its size, RBEE_MAX_BATCH how many jobs share it{hint})"
            )
        return None

    def release(self, seq: Sequence) -> None:
        slot = self._slot.pop(id(seq), None)
        if slot is not None:
            self._context.forget(slot)
            self._free.append(slot)
        seq.sampler.close()

    def reset(self) -> None:
        self._context.forget_all()

    def step(self, joining: list[Sequence]) -> None:
        for seq in joining:
            self._slot[id(seq)] = self._free.pop()
            self._active.append(seq)
        for seq in self._active:
            if not seq.wanted():
                seq.end("cancelled")
        self._leave()
        decoding = [s for s in self._active if s.length >= len(s.prompt)]
        if decoding:
            self._decode(decoding)
        for seq in [s for s in self._active if s.length < len(s.prompt)]:
            self._feed(seq)
        self._leave()

    def _decode(self, seqs: list[Sequence]) -> None:
        """One token of each decoding sequence, in one call."""
        ctx = self._context
        ctx.clear_batch()
        rows = []
        for seq in seqs:
            rows.append(ctx.add(seq.next_token, seq.length, self._slot[id(seq)], True))
            seq.length += 1
        lone = len(seqs) == 1 and seqs[0].length > BALLAST_FROM
        ballast = self._free[-1] if lone and self._free else None
        if ballast is not None:
            ctx.add(seqs[0].next_token, 0, ballast, False)
        try:
            ctx.decode()
        finally:
            if ballast is not None:
                ctx.forget(ballast)
        for seq, row in zip(seqs, rows, strict=True):
            self._sample(seq, row)

    def _feed(self, seq: Sequence) -> None:
        """The next chunk of a prompt, alone in its call; the last samples the first token."""
        ctx = self._context
        ctx.clear_batch()
        slot = self._slot[id(seq)]
        chunk = seq.prompt[seq.length : seq.length + PREFILL_CHUNK]
        last = len(seq.prompt) - 1
        for position, token in enumerate(chunk, seq.length):
            row = ctx.add(token, position, slot, position == last)
        seq.length += len(chunk)
        ctx.decode()
        if seq.length == len(seq.prompt):
            self._sample(seq, row)

    def _sample(self, seq: Sequence, row: int) -> None:
        token = seq.sampler.sample(self._context.handle, row)
        seq.accept(token, self._vocab.is_end(token))

    def _leave(self) -> None:
        """Release the sequences that have ended."""
        for seq in self._active:
            if seq.done:
                self.release(seq)
        self._active = [s for s in self._active if not s.done]
