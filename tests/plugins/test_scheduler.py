"""The default placement policy, directly and through the rbee_schedule hook."""

from __future__ import annotations

from rbee_core import create_plugin_manager, hookimpl
from rbee_core.job_request import JobRequest
from rbee_core.jobs import Job
from rbee_core.scheduling import Candidate
from rbee_queen import scheduler
from rbee_queen.scheduler import rbee_schedule

GiB = 2**30


def job(model: str = "tiny") -> Job:
    return Job(request=JobRequest(model=model, prompt="hi"))


def worker(
    wid: str,
    model: str = "tiny",
    busy: int = 0,
    device: str = "cuda:0",
    slots: int = 8,
    prefix: int = 0,
    hive: str = "localhost",
) -> Candidate:
    return Candidate(
        hive,
        device,
        worker_id=wid,
        model=model,
        busy=busy,
        slots=slots,
        prefix_tokens=prefix,
        prompt_tokens=1000,
    )


def device(dev: str, free: int | None = None, hive: str = "localhost") -> Candidate:
    return Candidate(hive, dev, free_memory=free)


def test_no_candidates() -> None:
    assert rbee_schedule(job(), []) is None


def test_loaded_worker_least_busy_first() -> None:
    busy = worker("w1", busy=3)
    idle = worker("w2", busy=0)
    some = worker("w3", busy=1)
    cands = [busy, idle, some, device("cuda:0", 80 * GiB), device("cpu", 64 * GiB)]
    assert rbee_schedule(job(), cands) is idle


def test_a_full_worker_with_no_device_offered_is_waited_for() -> None:
    """Placement offers no device while a replica may not start: the job waits for the
    least busy full worker (it is not bound to it: placement asks again)."""
    full = worker("w1", busy=5, slots=4)
    fuller = worker("w2", busy=8, slots=4)
    assert rbee_schedule(job(), [fuller, full]) is full


def test_a_device_offered_while_every_worker_is_full_starts_a_replica() -> None:
    full = worker("w1", busy=4, slots=4, hive="h1")
    there = device("cpu", 64 * GiB, hive="h1")
    elsewhere = device("cpu", 8 * GiB, hive="h2")
    assert rbee_schedule(job(), [full, there, elsewhere]) is elsewhere  # a hive without it


def test_a_worker_with_room_goes_before_any_device() -> None:
    room = worker("w1", busy=3, slots=4)
    assert rbee_schedule(job(), [device("cuda:1", 80 * GiB), room]) is room


def test_equally_busy_workers_keep_candidate_order() -> None:
    first, second = worker("w1", busy=2), worker("w2", busy=2)
    assert rbee_schedule(job(), [first, second]) is first


def test_the_worker_holding_the_longest_prefix_wins_within_the_margin() -> None:
    idle = worker("w1", busy=0, prefix=0)
    some = worker("w2", busy=2, prefix=300)
    most = worker("w3", busy=2, prefix=900)
    assert rbee_schedule(job(), [idle, some, most]) is most


def test_load_wins_when_the_prefix_worker_is_busier_than_the_margin() -> None:
    idle = worker("w1", busy=0, slots=4)
    hot = worker("w2", busy=3, slots=4, prefix=900)  # 3 > 0 + max(2, 4 // 4)
    assert rbee_schedule(job(), [hot, idle]) is idle


def test_the_margin_grows_with_a_quarter_of_the_slots() -> None:
    idle = worker("w1", busy=0, slots=32)
    hot = worker("w2", busy=8, slots=32, prefix=900)  # 8 <= 0 + 32 // 4
    assert scheduler.load_margin(32) == 8
    assert rbee_schedule(job(), [idle, hot]) is hot
    hotter = worker("w2", busy=9, slots=32, prefix=900)
    assert rbee_schedule(job(), [idle, hotter]) is idle


def test_a_prefix_worker_without_room_is_passed_over() -> None:
    full = worker("w1", busy=4, slots=4, prefix=900)
    room = worker("w2", busy=3, slots=4)
    assert rbee_schedule(job(), [full, room]) is room


def test_a_starting_worker_is_waited_for_not_chosen_as_a_device() -> None:
    starting = Candidate("h2", "cpu", model="tiny", starting=True)
    assert not starting.has_room
    assert rbee_schedule(job(), [starting]) is starting
    full = worker("w1", busy=4, slots=4)
    assert rbee_schedule(job(), [starting, full]) is full


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
