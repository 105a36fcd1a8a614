"""Continuous batching on llama.cpp: every running job of a model in one ``llama_batch``.

The KV cache has one slot per sequence, as in llama.cpp's own server (``-np``): a job
takes a free slot, its prompt is fed in chunks, then one token of every decoding sequence
goes into one ``llama_decode`` a step, and each samples its row of logits with its own
sampler chain. A finished or unwanted sequence frees its slot at once.

A slot keeps what its last job left in the cache: a new job takes the free slot whose
tokens share the longest prefix with its prompt (the chat template's system prompt; the
conversation so far, in a chat) and feeds only the rest, as llama-server's prompt cache
does. A repeated prompt's first token then costs one step, not a prefill.

A job's tokens are the same alone, in any batch and from a cached prefix. llama.cpp picks
kernels by the shape of a call, so every call has a shape whose kernels compute each row on
its own, in the same order, whatever else is in the call:

- a prompt chunk is decoded on its own, at most ``PREFILL_CHUNK`` tokens: flash attention
  takes one query at a time below 64 (above, it tiles queries and keys together). Wider
  chunks (``RBEE_PREFILL_CHUNK``) are faster, and a cell's numbers then depend on the
  chunk that wrote it: a slot lends only the whole chunks its prompts were cut into from
  the start, so a prompt continued from the cache is cut where it would be fed whole;
- decoding rows sit in consecutive slots, a free slot between them getting a filler row
  (one token at the end of its cache, no logits, dropped after the call): llama.cpp cuts
  a call into one ubatch per run of consecutive sequence ids;
- a lone query past ``BALLAST_FROM`` tokens (a lone decoding sequence, a one-token chunk)
  gets a filler row beside it: flash attention splits a single query's keys across
  threads once they pass 512 cells;
- per-row matmul kernels, or repacked ones that give each row the same numbers in a group
  of four as alone (``library.py``); no tiled matmul.
"""

from __future__ import annotations

from rbee_core import batching
from rbee_core.batching import BatchLoop, EngineSettings
from rbee_core.messages import FinishReason
from rbee_llamacpp.library import Context, Vocab
from rbee_llamacpp.sampling import Sampler

__all__ = ["BALLAST_FROM", "PREFILL_CHUNK", "LlamaEngine", "Sequence"]

Sequence = batching.Sequence[Sampler]

PREFILL_CHUNK = 63  # prompt tokens per decode call: below ggml's 64-query attention tiles
BALLAST_FROM = 224  # below 256 cells, ggml's single-query attention path is the usual one


class LlamaEngine(BatchLoop[Sampler]):
    """Runs the decode loop of one llama.cpp context for every sequence submitted to it.

    ``settings.kv_tokens`` is what one slot holds: a sequence needs its prompt plus
    ``max_tokens`` in it, and waits for a free slot (``settings.max_batch`` of them).
    """

    def __init__(
        self,
        context: Context,
        vocab: Vocab,
        settings: EngineSettings,
        prefill_chunk: int = PREFILL_CHUNK,
    ) -> None:
        """``prefill_chunk``: prompt tokens a call (``RBEE_PREFILL_CHUNK``). Past
        ``PREFILL_CHUNK`` flash attention tiles the queries: prompt processing is up to
        1.5x as fast, and a new job reuses only whole chunks of a cached prefix."""
        super().__init__(settings, prefill_tokens=prefill_chunk)
        self._context = context
        self._vocab = vocab
        slots = settings.max_batch
        self._free = list(range(slots - 1, -1, -1))
        self._slot: dict[int, int] = {}  # id(sequence) -> its slot (seq id in the cache)
        self._cached: list[list[int]] = [[] for _ in range(slots)]  # each slot's tokens
        # Wide chunks: how many of a slot's first cells whole chunks wrote, cut from 0.
        self._whole = [0] * slots
        self.cached_tokens = 0  # prompt tokens taken from the cache, all jobs together
        self.start()

    def slots_needed(self, seqs: list[Sequence]) -> int:
        """Each sequence has a slot of its own: the largest reserve must fit in one."""
        return max((s.reserve for s in seqs), default=0)

    def cache_refusal(self, seq: Sequence) -> str | None:
        """A sequence needs a slot of its own: say how many jobs would share the cache so
        that one slot holds it."""
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
        if slot is not None:  # its cells stay, for the next job that shares a prefix
            self._free.append(slot)
        super().release(seq)

    def reset(self) -> None:
        self._context.forget_all()
        self._cached = [[] for _ in self._cached]
        self._whole = [0] * len(self._whole)

    def _take_slot(self, seq: Sequence) -> None:
        """The free slot whose cached tokens share the longest prefix with ``seq``'s prompt;
        the rest of its cache is dropped. At least the last prompt token is fed again: its
        logits give the first token. With wide chunks, only whole chunks of the prefix are
        shared: cells a narrower call or a decode step wrote hold other numbers."""
        wide = self.prefill_tokens > PREFILL_CHUNK

        def shared(slot: int) -> int:
            cached = self._cached[slot][: self._whole[slot]] if wide else self._cached[slot]
            n = 0
            for a, b in zip(cached, seq.prompt[:-1], strict=False):
                if a != b:
                    break
                n += 1
            return n - n % self.prefill_tokens if wide else n

        # Of equals, the lowest: busy slots stay together (see _decode).
        slot = max(self._free, key=lambda s: (shared(s), -s))
        self._free.remove(slot)
        keep = shared(slot)
        self._context.forget(slot, keep)
        del self._cached[slot][keep:]
        self._whole[slot] = keep if wide else 0
        self._slot[id(seq)] = slot
        seq.length = keep
        seq.cached_tokens = keep
        self.cached_tokens += keep

    def step(self, joining: list[Sequence]) -> None:
        for seq in joining:
            self._take_slot(seq)
            self._active.append(seq)
        for seq in self._active:
            if not seq.wanted():
                seq.end(FinishReason.CANCELLED)
        self._leave()
        decoding = [s for s in self._active if s.length >= len(s.prompt)]
        if decoding:
            self._decode(decoding)
        for seq in [s for s in self._active if s.length < len(s.prompt)]:
            self._feed(seq)
        self._leave()

    def _decode(self, seqs: list[Sequence]) -> None:
        """One token of each decoding sequence, in one call of consecutive slots.

        llama.cpp takes a call's sequences in one ubatch only while their ids run on
        without a gap (each its own stream); otherwise it decodes them one ubatch after
        another, slower and each with a lone query's kernels. So a free slot between two
        busy ones gets a filler row, and a lone long sequence a neighbour: one token at
        the end of that slot's cache, no logits, dropped after the call (its cache stays).
        """
        busy = {self._slot[id(s)]: s for s in seqs}
        low, high = min(busy), max(busy)
        if low == high and seqs[0].length >= BALLAST_FROM:
            neighbour = self._neighbour(low)
            low, high = min(low, neighbour), max(high, neighbour)
        self._context.clear_batch()
        rows = []
        fillers = []
        for slot in range(low, high + 1):
            seq = busy.get(slot)
            if seq is None:
                fillers.append(self._filler(slot))
                continue
            rows.append((seq, self._context.add(seq.next_token, seq.length, slot, True)))
            self._cached[slot].append(seq.next_token)
            seq.length += 1
        self._call(fillers)
        for seq, row in rows:
            self._sample(seq, row)

    def _feed(self, seq: Sequence) -> None:
        """The next chunk of a prompt, alone in its call; the last samples the first token.
        A one-token chunk of a long prompt gets a neighbour, as a lone decoding row does."""
        slot = self._slot[id(seq)]
        chunk = seq.prompt[seq.length : seq.length + self.prefill_tokens]
        lone = len(chunk) == 1 and seq.length >= BALLAST_FROM
        neighbour = self._neighbour(slot) if lone else slot
        self._context.clear_batch()
        fillers = [self._filler(neighbour)] if neighbour < slot else []
        last = len(seq.prompt) - 1
        for position, token in enumerate(chunk, seq.length):
            row = self._context.add(token, position, slot, position == last)
        if neighbour > slot:
            fillers.append(self._filler(neighbour))
        if len(chunk) == self.prefill_tokens and seq.length == self._whole[slot]:
            self._whole[slot] += len(chunk)
        self._cached[slot] += chunk
        seq.length += len(chunk)
        self._call(fillers)
        if seq.length == len(seq.prompt):
            self._sample(seq, row)

    def _neighbour(self, slot: int) -> int:
        """A free slot next to ``slot``, or ``slot`` itself when there is none (one slot)."""
        for other in (slot + 1, slot - 1):
            if other in self._free:
                return other
        return slot

    def _filler(self, slot: int) -> tuple[int, int]:
        """A row at the end of free ``slot``'s cache (keeping room for it): the slot and the
        position to drop after the call."""
        cached = self._cached[slot]
        if len(cached) >= self.kv_tokens:
            del cached[self.kv_tokens - 1 :]
            self._context.forget(slot, len(cached))
            self._whole[slot] = min(
                self._whole[slot], len(cached) - len(cached) % self.prefill_tokens
            )
        self._context.add(0, len(cached), slot, False)
        return slot, len(cached)

    def _call(self, fillers: list[tuple[int, int]]) -> None:
        try:
            self._context.decode()
        finally:
            for slot, position in fillers:
                self._context.forget(slot, position)

    def _sample(self, seq: Sequence, row: int) -> None:
        token = seq.sampler.sample(row)
        seq.accept(token, self._vocab.is_end(token))

    def _leave(self) -> None:
        """Release the sequences that have ended."""
        for seq in self._active:
            if seq.done:
                self.release(seq)
        self._active = [s for s in self._active if not s.done]
