"""The hive's room check: a worker fits with its weights, runtime and KV cache, or not."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from rbee_core.backends import Footprint
from rbee_core.engine_options import EngineOptions
from rbee_core.errors import DeviceTooSmall
from rbee_core.models import LocalModel
from rbee_hive import room as room_module
from rbee_hive.devices import Device
from rbee_hive.hive import Hive
from rbee_hive.room import MIN_KV_TOKENS

MB = 10**6


class Sized:
    """A backend whose workers hold 100 MB of weights, 50 MB of runtime, 1 MB a token."""

    name = "sized"
    formats = ("gguf",)

    def __init__(self, kv_tokens: int = 100) -> None:
        self.kv_tokens = kv_tokens

    def footprint(self, model: LocalModel, device: str, free_memory: int) -> Footprint:
        return Footprint(100 * MB, 50 * MB, MB, self.kv_tokens)

    def load(self, model: LocalModel, device: str, narrate: Any) -> Any:
        raise AssertionError("never loaded here")


class Unsized:
    name = "unsized"
    formats = ("gguf",)

    def load(self, model: LocalModel, device: str, narrate: Any) -> Any:
        raise AssertionError("never loaded here")


class FakeWorker:
    alive = True

    def __init__(self, rss: int, reserved: int) -> None:
        self.device, self.reserved, self._rss = "cpu", reserved, rss

    def memory(self) -> int:
        return self._rss


def hive(limit: int | None = None, options: EngineOptions | None = None) -> Hive:
    async def make() -> Hive:
        return Hive("h", store=None, cpu_memory_limit=limit, engine_options=options)  # type: ignore[arg-type]

    return asyncio.run(make())


@pytest.fixture
def model(tmp_path: Path) -> LocalModel:
    path = tmp_path / "m.gguf"
    path.write_bytes(b"x" * 1000)
    return LocalModel("m", path, "gguf")


def device(free_mb: int) -> Device:
    return Device("cpu", "CPU", 64_000 * MB, free_mb * MB, cores=8)


def test_a_worker_that_fits_reserves_all_it_will_hold(model: LocalModel) -> None:
    room = hive().room.fit(model, device(1000), Sized())
    assert room.need == 250 * MB and room.kv_tokens is None
    assert "room in cpu for m on sized: it needs 250.0 MB (weights 100.0 MB" in room.message
    assert "KV cache 100.0 MB for 100 tokens" in room.message


def test_a_cache_too_big_for_the_device_is_cut_to_fit(model: LocalModel) -> None:
    backend = Sized(kv_tokens=10 * MIN_KV_TOKENS)
    room = hive().room.fit(model, device(150 + 3 * MIN_KV_TOKENS), backend)
    assert room.kv_tokens == 3 * MIN_KV_TOKENS
    assert room.need == (150 + 3 * MIN_KV_TOKENS) * MB
    assert f"its KV cache cut to {3 * MIN_KV_TOKENS:,} tokens to fit" in room.message


def test_too_small_for_even_a_small_cache_names_what_it_needs(model: LocalModel) -> None:
    backend = Sized(kv_tokens=10 * MIN_KV_TOKENS)
    with pytest.raises(DeviceTooSmall) as info:
        hive().room.fit(model, device(150 + MIN_KV_TOKENS // 2), backend)
    assert info.value.message.startswith("m on sized needs ")
    assert "but hive h has only 1.2 GB free there" in info.value.message


def test_a_cache_size_the_user_set_is_never_cut(model: LocalModel) -> None:
    options = EngineOptions.from_env({"RBEE_KV_CACHE": "100000 tokens"})
    with pytest.raises(DeviceTooSmall):
        hive(options=options).room.fit(
            model, device(150 + 3 * MIN_KV_TOKENS), Sized(kv_tokens=100_000)
        )


def test_a_backend_without_a_footprint_is_guessed_from_the_file(model: LocalModel) -> None:
    room = hive().room.fit(model, device(1), Unsized())
    assert room.need == 4500  # 4.5 x the 1000-byte file
    with pytest.raises(DeviceTooSmall, match=r"about 4\.5 KB"):
        hive().room.fit(model, device(0), Unsized())


def test_the_limit_counts_what_workers_reserved_and_workers_starting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(room_module, "available_memory", lambda: 32_000 * MB)
    h = hive(limit=1000 * MB)
    # One worker holds 300 MB now but may grow to 600 MB; another is starting with 100 MB.
    h.workers["w"] = FakeWorker(rss=300 * MB, reserved=600 * MB)  # type: ignore[assignment]
    h.room.reserve(("other", "cpu", "sized"), 100 * MB)
    assert h.device("cpu").free_memory == 300 * MB
    # Without a limit, what they have yet to take comes off the memory available.
    unlimited = hive()
    unlimited.workers["w"] = FakeWorker(rss=300 * MB, reserved=600 * MB)  # type: ignore[assignment]
    assert unlimited.device("cpu").free_memory == (32_000 - 300) * MB
