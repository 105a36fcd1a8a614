"""rbee_llamacpp.resident_pages: zeroed pages mapped since a point, and a file's mapped
pages, go back to the kernel, and nothing a program reads changes."""

from __future__ import annotations

import mmap
from pathlib import Path

import numpy as np

from rbee_llamacpp.resident_pages import (
    MIN_BYTES,
    anonymous_memory,
    give_back_file_pages,
    give_back_zero_pages,
)


def resident_kib() -> int:
    status = Path("/proc/self/status").read_text()
    return next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))


def test_zeroed_pages_go_back_and_written_ones_stay() -> None:
    before = anonymous_memory()
    size = 2 * MIN_BYTES
    memory = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    data = np.frombuffer(memory, dtype=np.uint8)
    data[:] = 0  # cleared whole, as llama.cpp clears its KV cache: every page resident
    data[::1_000_003] = 7  # a few pages hold something
    held = resident_kib()
    given = give_back_zero_pages(before)
    pages_written = len({i // mmap.PAGESIZE for i in range(0, size, 1_000_003)})
    assert given == size - pages_written * mmap.PAGESIZE
    assert held - resident_kib() > 0.9 * given / 1024
    assert np.array_equal(np.flatnonzero(data), np.arange(0, size, 1_000_003))
    assert int(data.sum()) == 7 * len(range(0, size, 1_000_003))
    data[5] = 1  # a page given back is writable as before
    assert data[5] == 1 and data[4] == 0
    del data
    memory.close()


def test_memory_mapped_before_is_left_alone() -> None:
    memory = mmap.mmap(-1, 2 * MIN_BYTES, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    data = np.frombuffer(memory, dtype=np.uint8)
    data[:] = 0
    held = resident_kib()
    assert give_back_zero_pages(anonymous_memory()) == 0
    assert resident_kib() >= held - 1024
    del data
    memory.close()


def test_a_files_mapped_pages_go_back_and_read_the_same(tmp_path: Path) -> None:
    path = tmp_path / "weights.bin"
    content = np.arange(MIN_BYTES, dtype=np.uint8)  # 0, 1, ..., 255, 0, ...
    content.tofile(path)
    with path.open("rb") as file:
        mapped = mmap.mmap(file.fileno(), 0, prot=mmap.PROT_READ)
    data = np.frombuffer(mapped, dtype=np.uint8)
    total = int(data.sum(dtype=np.int64))  # every page read: resident
    held = resident_kib()
    assert give_back_file_pages(path) >= MIN_BYTES
    assert held - resident_kib() > 0.9 * MIN_BYTES / 1024
    assert int(data.sum(dtype=np.int64)) == total  # read again, from the page cache
    del data
    mapped.close()
