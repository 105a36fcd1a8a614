"""The messages between processes: their JSON forms go both ways unchanged."""

from __future__ import annotations

from rbee_core.messages import (
    Device,
    HiveCapabilities,
    HiveHeartbeat,
    WorkerHeartbeat,
    WorkerInfo,
    WorkerReady,
    WorkerState,
)

WORKER = WorkerInfo(
    id="worker-1",
    hive="h2",
    model="smollm2-135m",
    device="cpu",
    url="http://10.0.0.2:41000",
    backend="llamacpp",
    quantization="Q4_1",
    pid=42,
    state=WorkerState.BUSY,
    slots=4,
)


def test_every_message_survives_its_json() -> None:
    cpu = Device("cpu", "CPU", 2**34, 2**33, cores=8)
    messages = [
        cpu,
        WORKER,
        WorkerReady(url="http://127.0.0.1:1", pid=7, device="cpu", slots=4, backend="torch"),
        WorkerHeartbeat(busy=True, running=2, waiting=1, jobs_served=9, idle_since=1.5),
        HiveHeartbeat("h2", "http://10.0.0.2:8600", [WORKER], ["smollm2-135m"]),
        HiveCapabilities("h2", "http://10.0.0.2:8600", [cpu], {"torch": ["gguf"]}, [], [WORKER]),
    ]
    for message in messages:
        assert type(message).from_json(message.to_json()) == message


def test_unknown_keys_are_ignored_and_states_are_enums() -> None:
    info = WorkerInfo.from_json(WORKER.to_json() | {"state": "idle", "added_later": 1})
    assert info.state is WorkerState.IDLE
    assert WORKER.to_json()["state"] == "busy"


def test_a_jobs_end_event_leaves_out_what_it_does_not_know() -> None:
    from rbee_core.events import JobEnd

    cancelled = JobEnd(outcome="cancelled", finish_reason="cancelled", completion_tokens=3)
    assert cancelled.to_json() == {
        "outcome": "cancelled",
        "finish_reason": "cancelled",
        "completion_tokens": 3,
    }
    assert JobEnd.from_json(cancelled.to_json()) == cancelled
