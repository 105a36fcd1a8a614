"""The messages between processes: their JSON forms go both ways unchanged."""

from __future__ import annotations

from typing import Any

import pytest

from rbee_core.errors import InvalidRequest
from rbee_core.messages import (
    MAX_HIVE_MODELS,
    MAX_HIVE_WORKERS,
    MAX_LABEL_VALUE,
    MAX_LABELS,
    MAX_MODEL_NAME,
    Device,
    HiveCapabilities,
    HiveHeartbeat,
    HiveRegistration,
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
        HiveRegistration("h2", "http://10.0.0.2:8600", "n" * 43),
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
    # The prompt tokens a worker took from its cache travel with the other counts.
    done = JobEnd(finish_reason="stop", prompt_tokens=900, completion_tokens=4, cached_tokens=850)
    assert done.to_json()["cached_tokens"] == 850
    assert JobEnd.from_json(done.to_json()) == done


BEAT: dict[str, Any] = {"name": "h2", "url": "http://10.0.0.2:8600", "workers": [], "models": []}


@pytest.mark.parametrize(
    ("change", "field", "says"),
    [
        ({"models": ["m"] * (MAX_HIVE_MODELS + 1)}, "models", "at most 1,000 items, got 1,001"),
        ({"models": ["m" * (MAX_MODEL_NAME + 1)]}, "models", "models[0]: at most 512 characters"),
        ({"models": [7]}, "models", "models[0] must be a string"),
        ({"models": "m"}, "models", "models must be a list"),
        ({"workers": [WORKER.to_json()] * (MAX_HIVE_WORKERS + 1)}, "workers", "at most 256"),
        ({"workers": ["w"]}, "workers", "workers[0] must be an object"),
        ({"workers": [WORKER.to_json() | {"url": None}]}, "workers", "workers[0].url must be"),
        ({"workers": [WORKER.to_json() | {"slots": "4"}]}, "workers", "slots must be a number"),
        ({"workers": [WORKER.to_json() | {"state": "evil"}]}, "workers", "idle or busy"),
        ({"name": "a/../b"}, "name", "1 to 64 letters, digits"),
        ({"name": "h" * 65}, "name", "1 to 64 letters"),
        ({"name": None}, "name", "must be a hive name"),
        ({"url": "u" * 2049}, "url", "at most 2,048 characters"),
    ],
)
def test_a_hive_heartbeat_over_a_cap_or_malformed_is_refused_naming_the_field(
    change: dict[str, Any], field: str, says: str
) -> None:
    with pytest.raises(InvalidRequest) as caught:
        HiveHeartbeat.from_json(BEAT | change)
    assert caught.value.field == field and says in caught.value.message, caught.value.message


def test_a_heartbeat_at_the_caps_is_taken() -> None:
    models = [f"{i:0{MAX_MODEL_NAME}d}" for i in range(MAX_HIVE_MODELS)]
    beat = HiveHeartbeat.from_json(BEAT | {"models": models, "workers": [WORKER.to_json()]})
    assert len(beat.models) == MAX_HIVE_MODELS and beat.workers == [WORKER]


@pytest.mark.parametrize(
    ("change", "field", "says"),
    [
        ({"labels": {str(i): "v" for i in range(MAX_LABELS + 1)}}, "labels", "at most 32 labels"),
        ({"labels": {"k" * 65: "v"}}, "labels", "a label's key: at most 64 characters"),
        ({"labels": {"k": "v" * (MAX_LABEL_VALUE + 1)}}, "labels", "at most 256 characters"),
        ({"labels": ["k=v"]}, "labels", "labels must be an object"),
        ({"devices": [{"id": "cpu"}] * 65}, "devices", "at most 64 items"),
        ({"devices": [{"id": "cpu", "name": "CPU"}]}, "devices", "total_memory must be a num"),
        ({"backends": {"torch": ["gguf"] * 65}}, "backends", "torch: at most 64 items"),
    ],
)
def test_capabilities_over_a_cap_are_refused_naming_the_field(
    change: dict[str, Any], field: str, says: str
) -> None:
    with pytest.raises(InvalidRequest) as caught:
        HiveCapabilities.from_json(BEAT | change)
    assert caught.value.field == field and says in caught.value.message, caught.value.message


def test_a_registration_needs_a_nonce_and_a_hive_name() -> None:
    body = {"name": "h2", "url": "http://10.0.0.2:8600", "nonce": "n" * 43}
    assert HiveRegistration.from_json(body) == HiveRegistration("h2", body["url"], "n" * 43)
    for nonce in (None, "short", "n" * 257, 12):
        with pytest.raises(InvalidRequest, match="nonce is required"):
            HiveRegistration.from_json(body | {"nonce": nonce})
    with pytest.raises(InvalidRequest, match="1 to 64 letters"):
        HiveRegistration.from_json(body | {"name": "a b"})
