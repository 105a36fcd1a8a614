"""Sizes as people write them, and as rbee prints them."""

from __future__ import annotations

import pytest

from rbee_core.errors import InvalidRequest
from rbee_core.kv_cache import DEFAULT_MAX_BATCH, KvCacheSize
from rbee_core.settings import KV_CACHE, MAX_BATCH
from rbee_core.units import human_bytes, parse_size


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("100MB", 100_000_000),
        ("8GB", 8 * 10**9),
        ("1.5 GB", 1_500_000_000),
        ("512", 512),
        ("64kb", 64_000),
        ("512MiB", 512 * 2**20),
        ("4gi", 4 * 2**30),
        ("2 TB", 2 * 10**12),
    ],
)
def test_sizes(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["lots", "8XB", "GB", "-1GB", ""])
def test_bad_sizes_say_what_a_size_looks_like(text: str) -> None:
    with pytest.raises(ValueError, match=r"not a size.*try 512MB"):
        parse_size(text)


def test_human_bytes() -> None:
    assert human_bytes(98_362_432) == "98.4 MB"
    assert human_bytes(512) == "512 B"


def test_kv_cache_in_bytes_or_tokens() -> None:
    assert KV_CACHE.read({}) is None
    assert KV_CACHE.read({"RBEE_KV_CACHE": " "}) is None
    assert KV_CACHE.read({"RBEE_KV_CACHE": "512MiB"}) == KvCacheSize(bytes=512 * 2**20)
    assert KV_CACHE.read({"RBEE_KV_CACHE": "350 tokens"}) == KvCacheSize(tokens=350)
    assert KV_CACHE.read({"RBEE_KV_CACHE": "1token"}) == KvCacheSize(tokens=1)
    assert KvCacheSize(tokens=350).token_slots(23040) == 350
    assert KvCacheSize(bytes=23040 * 10).token_slots(23040) == 10
    assert KvCacheSize(bytes=5).token_slots(23040) == 1
    with pytest.raises(InvalidRequest, match="RBEE_KV_CACHE must be a size"):
        KV_CACHE.read({"RBEE_KV_CACHE": "lots"})


def test_max_batch_setting() -> None:
    assert (MAX_BATCH.read({}) or DEFAULT_MAX_BATCH) == 64
    assert MAX_BATCH.read({"RBEE_MAX_BATCH": "4"}) == 4
    for bad in ("0", "-1", "many"):
        with pytest.raises(InvalidRequest, match="RBEE_MAX_BATCH"):
            MAX_BATCH.read({"RBEE_MAX_BATCH": bad})
