"""Give back the pages llama.cpp holds resident but does not need in memory.

**Zeroed pages.** llama.cpp allocates a context's KV cache whole and clears it, so every
page of it is resident from the start: 180 MiB for the default model's 8,192 tokens before
any job ran. A private anonymous page that the kernel takes back reads as zeros again, so
handing back the pages that hold nothing but zeros changes nothing llama.cpp sees; a page
comes back when a job writes its first cell there. The worker's resident memory then
grows with the tokens its jobs hold, while the hive's room check still counts the whole
cache it can grow to. Only memory mapped while the context was made, in runs of at least
``MIN_BYTES``, is looked at: the KV cache and work buffers, not the interpreter's heap,
which other threads may write.

**A file's pages.** A model whose weights llama.cpp repacked has read them from its
memory-mapped file into a copy of their own; the file's pages stay mapped, resident twice.
Dropping the mapping's pages leaves them in the page cache, and the few tensors still used
from the file (the token embeddings, norms) map back from there on their first use.

Linux only (``/proc/self/maps``, ``madvise``); elsewhere nothing is given back.
"""

from __future__ import annotations

import ctypes
import functools
import mmap
from pathlib import Path

import numpy as np

__all__ = ["MIN_BYTES", "anonymous_memory", "give_back_file_pages", "give_back_zero_pages"]

MIN_BYTES = 16 * 2**20
_MAPS = Path("/proc/self/maps")
_MADV_DONTNEED = 4
_PAGE = mmap.PAGESIZE

Ranges = list[tuple[int, int]]


def anonymous_memory() -> Ranges:
    """The process's private, writable, anonymous mappings, as (start, end) addresses."""
    if not _MAPS.exists():
        return []
    ranges = []
    for line in _MAPS.read_text().splitlines():
        fields = line.split()
        if len(fields) == 5 and fields[1] == "rw-p":  # no path: anonymous
            start, end = (int(x, 16) for x in fields[0].split("-"))
            ranges.append((start, end))
    return ranges


@functools.cache
def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    return libc


def _madvise(start: int, length: int) -> bool:
    return bool(_libc().madvise(start, length, _MADV_DONTNEED) == 0)


def give_back_file_pages(path: Path) -> int:
    """Drop this process's resident pages of every mapping of ``path`` (they stay in the
    page cache); the bytes of mapping covered. For a read-only mapping nothing changes but
    where a page is until it is read again."""
    if not _MAPS.exists():
        return 0
    target = str(path.resolve())
    covered = 0
    for line in _MAPS.read_text().splitlines():
        fields = line.split(maxsplit=5)
        if len(fields) == 6 and fields[5] == target and fields[1].startswith("r-"):
            start, end = (int(x, 16) for x in fields[0].split("-"))
            if _madvise(start, end - start):
                covered += end - start
    return covered


def _new_parts(before: Ranges, after: Ranges) -> Ranges:
    """The parts of ``after``'s ranges that no range of ``before`` covered."""
    parts = []
    for start, end in after:
        at = start
        for old_start, old_end in before:
            if old_end <= at or old_start >= end:
                continue
            if old_start > at:
                parts.append((at, old_start))
            at = max(at, old_end)
        if at < end:
            parts.append((at, end))
    return parts


def give_back_zero_pages(before: Ranges) -> int:
    """Hand the kernel every all-zero page of the anonymous memory mapped since
    ``before`` (``anonymous_memory()`` then) in runs of at least ``MIN_BYTES``; the bytes
    given back. Call it while no other thread can be writing that memory."""
    if not _MAPS.exists():
        return 0
    given = 0
    for start, end in _new_parts(sorted(before), anonymous_memory()):
        if end - start < MIN_BYTES:
            continue
        words = (ctypes.c_uint64 * ((end - start) // 8)).from_address(start)
        zero = ~np.ctypeslib.as_array(words).reshape(-1, _PAGE // 8).any(axis=1)
        # Each run of zero pages, one madvise call.
        edges = np.flatnonzero(np.diff(np.concatenate(([0], zero.astype(np.int8), [0]))))
        for first, last in zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True):
            if _madvise(start + first * _PAGE, (last - first) * _PAGE):
                given += (last - first) * _PAGE
    return given
