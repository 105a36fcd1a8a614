"""The default placement policy, directly and through the rbee_schedule hook."""

from __future__ import annotations

from rbee_core import create_plugin_manager, hookimpl
from rbee_core.jobs import Job, JobRequest
from rbee_core.scheduling import Candidate
from rbee_queen import scheduler
from rbee_queen.scheduler import rbee_schedule

GiB = 2**30


def job(model: str = "tiny") -> Job:
    return Job(request=JobRequest(model=model, prompt="hi"))


def worker(wid: str, model: str = "tiny", busy: int = 0, device: str = "cuda:0") -> Candidate:
    return Candidate("localhost", device, worker_id=wid, model=model, busy=busy)


def device(dev: str, free: int | None = None) -> Candidate:
    return Candidate("localhost", dev, free_memory=free)


def test_no_candidates() -> None:
    assert rbee_schedule(job(), []) is None


def test_loaded_worker_least_busy_first() -> None:
    busy = worker("w1", busy=3)
    idle = worker("w2", busy=0)
    some = worker("w3", busy=1)
    cands = [busy, idle, some, device("cuda:0", 80 * GiB), device("cpu", 64 * GiB)]
    assert rbee_schedule(job(), cands) is idle


def test_loaded_worker_preferred_even_when_busy() -> None:
    busy = worker("w1", busy=5)
    assert rbee_schedule(job(), [device("cuda:1", 80 * GiB), busy]) is busy


def test_equally_busy_workers_keep_candidate_order() -> None:
    first, second = worker("w1", busy=2), worker("w2", busy=2)
    assert rbee_schedule(job(), [first, second]) is first


def test_workers_with_another_model_are_ignored() -> None:
    gpu = device("cuda:0", 8 * GiB)
    other = worker("w1", model="big", busy=0)
    assert rbee_schedule(job("tiny"), [other, gpu]) is gpu
    assert rbee_schedule(job("tiny"), [other]) is None


def test_gpu_with_most_free_memory() -> None:
    small = device("cuda:0", 4 * GiB)
    large = device("cuda:1", 40 * GiB)
    medium = device("cuda:2", 16 * GiB)
    cpu = device("cpu", 512 * GiB)
    assert rbee_schedule(job(), [cpu, small, large, medium]) is large


def test_gpu_with_unknown_free_memory_ranks_last() -> None:
    unknown = device("cuda:0", None)
    known = device("cuda:1", 1)
    assert rbee_schedule(job(), [unknown, known]) is known
    assert rbee_schedule(job(), [unknown, device("cpu", 10 * GiB)]) is unknown


def test_cpu_fallback() -> None:
    cpu = device("cpu", 16 * GiB)
    assert rbee_schedule(job(), [cpu]) is cpu
    assert rbee_schedule(job(), [worker("w1", model="other"), cpu]) is cpu


def test_hook_default_policy() -> None:
    pm = create_plugin_manager(load_entrypoints=False)
    pm.register(scheduler, name="default-scheduler")
    try:
        gpu = device("cuda:0", 8 * GiB)
        assert pm.hook.rbee_schedule(job=job(), candidates=[device("cpu"), gpu]) is gpu
        assert pm.hook.rbee_schedule(job=job(), candidates=[]) is None
    finally:
        pm.unregister(name="default-scheduler")


def test_a_plugin_policy_goes_before_the_default() -> None:
    class AlwaysCpu:
        @hookimpl
        def rbee_schedule(self, job: Job, candidates: list[Candidate]) -> Candidate | None:
            return next((c for c in candidates if c.device == "cpu"), None)

    pm = create_plugin_manager(load_entrypoints=False)
    pm.register(AlwaysCpu(), name="always-cpu")
    # Registered after the plugin: trylast still puts the default behind it.
    pm.register(scheduler, name="default-scheduler")
    try:
        cpu, gpu = device("cpu"), device("cuda:0", 80 * GiB)
        assert pm.hook.rbee_schedule(job=job(), candidates=[gpu, cpu]) is cpu
        # The plugin answers None: the default policy decides.
        assert pm.hook.rbee_schedule(job=job(), candidates=[gpu]) is gpu
    finally:
        pm.unregister(name="default-scheduler")
        pm.unregister(name="always-cpu")


def test_built_in_queen_plugin_provides_the_policy() -> None:
    pm = create_plugin_manager("queen")
    gpu = device("cuda:0", 8 * GiB)
    assert pm.hook.rbee_schedule(job=job(), candidates=[device("cpu"), gpu]) is gpu
