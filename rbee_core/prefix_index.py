"""Which worker likely still holds a job's prompt prefix in its cache: the queen's prefix
index (pure, no I/O).

A prompt is a chain of blocks, each hashed together with the hash of the block before it,
so one block's hash stands for the whole prefix up to it: a chat's messages are one block
each, a raw prompt is cut in ``BLOCK_CHARS``-character blocks. Each worker keeps a bounded
LRU of the block hashes of the jobs it served recently (their prompt and their answer, which
the next turn of a conversation sends back as the assistant's message). ``match`` walks a
new job's chain through a worker's hashes and gives the tokens of the longest prefix found.

Tokens are estimated from characters: ``CHARS_PER_TOKEN`` at first, then the ratio the
workers report (a job's real ``prompt_tokens`` against its prompt's characters).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "BLOCK_CHARS",
    "BLOCKS_PER_WORKER",
    "CHARS_PER_TOKEN",
    "Block",
    "PrefixIndex",
    "answer_blocks",
    "prompt_blocks",
]

BLOCK_CHARS = 256  # a raw prompt's block: small enough to match most of a shared prefix
BLOCKS_PER_WORKER = 4096  # about 16 bytes a hash: well under 1 MB per worker
CHARS_PER_TOKEN = 4.0  # before any worker reported a job's real prompt tokens
_SMOOTHING = 0.2  # weight of each new report in the learned characters-per-token ratio


@dataclass(frozen=True, slots=True)
class Block:
    """One block of a prompt: the hash of the prefix up to and including it, and its
    length in characters."""

    digest: bytes
    chars: int


def _chain(previous: bytes, *parts: str) -> bytes:
    h = hashlib.blake2b(previous, digest_size=16)
    for part in parts:
        h.update(b"\0")
        h.update(part.encode("utf-8", "surrogatepass"))
    return h.digest()


def _message_chain(messages: Iterable[tuple[str, str]], previous: bytes) -> list[Block]:
    blocks = []
    for role, content in messages:
        previous = _chain(previous, "m", role, content)
        blocks.append(Block(previous, len(content) + len(role)))
    return blocks


def _text_chain(text: str, previous: bytes) -> list[Block]:
    blocks = []
    for start in range(0, len(text), BLOCK_CHARS):
        piece = text[start : start + BLOCK_CHARS]
        previous = _chain(previous, "t", piece)
        blocks.append(Block(previous, len(piece)))
    return blocks


def prompt_blocks(prompt: str, messages: Sequence[tuple[str, str]] = ()) -> list[Block]:
    """A job's prompt as a chain of blocks: one per message of a chat, else the prompt's
    text in ``BLOCK_CHARS``-character blocks (a partial last block matches only itself)."""
    if messages:
        return _message_chain(messages, b"")
    return _text_chain(prompt, b"")


def answer_blocks(prompt: str, messages: Sequence[tuple[str, str]], answer: str) -> list[Block]:
    """The chain a worker holds once it answered: the prompt's blocks, then the answer as
    the next turn sends it back (the assistant's message, or the text that follows)."""
    if messages:
        return _message_chain([*messages, ("assistant", answer)], b"")
    return _text_chain(prompt + answer, b"")


class PrefixIndex:
    """Per worker, the block hashes of what it served recently, oldest forgotten first."""

    def __init__(self, blocks_per_worker: int = BLOCKS_PER_WORKER) -> None:
        self.blocks_per_worker = blocks_per_worker
        self.chars_per_token = CHARS_PER_TOKEN
        self._held: dict[str, OrderedDict[bytes, None]] = {}

    def tokens(self, chars: int) -> int:
        """Estimated tokens of ``chars`` characters of prompt."""
        return round(chars / self.chars_per_token)

    def estimate(self, blocks: Sequence[Block]) -> int:
        """Estimated tokens of a whole prompt."""
        return self.tokens(sum(b.chars for b in blocks))

    def record(
        self,
        worker_id: str,
        blocks: Sequence[Block],
        prompt_chars: int = 0,
        prompt_tokens: int | None = None,
    ) -> None:
        """``worker_id`` served a job whose chain is ``blocks``: it now holds them (the most
        recent last). ``prompt_tokens``, the worker's count for ``prompt_chars`` characters
        of prompt, corrects the characters-per-token ratio."""
        held = self._held.setdefault(worker_id, OrderedDict())
        for block in blocks:
            held[block.digest] = None
            held.move_to_end(block.digest)
        while len(held) > self.blocks_per_worker:
            held.popitem(last=False)
        if prompt_tokens and prompt_tokens > 0 and prompt_chars > 0:
            seen = prompt_chars / prompt_tokens
            self.chars_per_token += _SMOOTHING * (seen - self.chars_per_token)

    def match(self, worker_id: str, blocks: Sequence[Block]) -> int:
        """Estimated tokens of the longest prefix of ``blocks`` that ``worker_id`` holds."""
        held = self._held.get(worker_id)
        if not held:
            return 0
        chars = 0
        for block in blocks:
            if block.digest not in held:
                break
            chars += block.chars
        return self.tokens(chars)

    def forget(self, worker_id: str) -> None:
        """The worker went: what it held went with it."""
        self._held.pop(worker_id, None)

    def keep_only(self, worker_ids: Iterable[str]) -> None:
        """Forget every worker but ``worker_ids`` (the ones still known)."""
        keep = set(worker_ids)
        for worker_id in [w for w in self._held if w not in keep]:
            del self._held[worker_id]

    def __len__(self) -> int:
        """Workers with something recorded."""
        return len(self._held)
