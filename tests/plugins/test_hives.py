"""The queen's hive registry, the ssh command line, and placement across hives."""

from __future__ import annotations

import time
from typing import Any

import pytest

from rbee_core.errors import InvalidRequest
from rbee_core.jobs import Job, JobRequest
from rbee_core.plugins import create_plugin_manager
from rbee_queen.hives import HiveConflict, HiveRecord, HiveRegistry, UnknownHive
from rbee_queen.launcher import local_command, ssh_command
from rbee_queen.orchestrator import Queen, WorkerRef

CPU = {"id": "cpu", "name": "CPU", "total_memory": 2**34, "free_memory": 2**33, "cores": 8}
GPU = {"id": "cuda:0", "name": "H200", "total_memory": 2**37, "free_memory": 2**36}


def test_ssh_command_is_exact() -> None:
    assert ssh_command("gpu-box", "http://10.0.0.2:8500") == [
        "ssh",
        "-o",
        "BatchMode=yes",
        "-o",
        "ConnectTimeout=10",
        "gpu-box",
        "nohup rbee-hive --queen-url http://10.0.0.2:8500 --host 0.0.0.0 --port 8600 "
        "--name gpu-box --heartbeat 2.0 > /tmp/rbee-hive.log 2>&1 &",
    ]


def test_ssh_command_quotes_what_the_remote_shell_would_split() -> None:
    remote = ssh_command("box", "http://q:8500/?a=b c")[-1]
    assert "'http://q:8500/?a=b c'" in remote


def test_the_local_hive_exits_with_the_queen() -> None:
    command = local_command("http://127.0.0.1:8500", "localhost", 0.5)
    assert command[1:3] == ["-m", "rbee_hive"]
    assert "--exit-with-parent" in command
    assert command[command.index("--heartbeat") + 1] == "0.5"


def test_register_heartbeat_ready() -> None:
    registry = HiveRegistry(timeout=5)
    record = registry.register("alpha", "http://127.0.0.1:1")
    assert record.state == "joining" and not record.first_heartbeat.is_set()
    record.devices = [CPU]
    registry.heartbeat("alpha", {"workers": [{"id": "w1"}], "models": ["m"]})
    assert record.state == "ready" and record.first_heartbeat.is_set()
    assert record.workers == [{"id": "w1"}] and record.models == ["m"]


def test_a_name_taken_by_a_live_hive_is_refused_but_a_restart_is_not() -> None:
    registry = HiveRegistry(timeout=5)
    registry.register("alpha", "http://127.0.0.1:1")
    with pytest.raises(HiveConflict, match=r"already registered from http://127\.0\.0\.1:1"):
        registry.register("alpha", "http://127.0.0.1:2")
    assert registry.register("alpha", "http://127.0.0.1:1").url == "http://127.0.0.1:1"
    registry.get("alpha").state = "unreachable"  # the machine came back on another port
    assert registry.register("alpha", "http://127.0.0.1:2").url == "http://127.0.0.1:2"


def test_unknown_hive_names_the_known_ones() -> None:
    registry = HiveRegistry(timeout=5)
    registry.register("alpha", "http://127.0.0.1:1")
    with pytest.raises(UnknownHive, match="no hive named 'ghost'; hives: alpha"):
        registry.heartbeat("ghost", {})
    with pytest.raises(UnknownHive) as info:
        registry.get("ghost")
    assert info.value.status == 404


def test_silent_hives_are_found_after_the_timeout() -> None:
    registry = HiveRegistry(timeout=1.0)
    record = registry.register("alpha", "http://127.0.0.1:1")
    record.devices = [CPU]
    registry.heartbeat("alpha", {})
    assert registry.silent() == []
    record.last_heartbeat = time.time() - 2
    assert registry.silent() == [record]
    record.state = "unreachable"
    assert registry.silent() == []  # reported once


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"hive": ""}, "hive"),
        ({"device": 3}, "device"),
        ({"keep_alive": 0}, "keep_alive"),
        ({"keep_alive": True}, "keep_alive"),
        ({"keep_alive": "long"}, "keep_alive"),
    ],
)
def test_placement_fields_are_validated(fields: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        JobRequest.from_json({"model": "m", "prompt": "p", **fields})
    assert info.value.field == field


def _queen() -> tuple[Queen, list[HiveRecord]]:
    queen = Queen(create_plugin_manager())
    hives = []
    for name, devices in (("alpha", [CPU]), ("beta", [GPU, CPU])):
        record = HiveRecord(name, f"http://{name}:8600", state="ready")
        record.devices = devices
        queen.hives.hives[name] = record
        hives.append(record)
    return queen, hives


def test_candidates_cover_every_hive_and_honour_a_device_pin() -> None:
    queen, hives = _queen()
    queen.workers["w1"] = WorkerRef("w1", "alpha", "smollm2-135m", "cpu", "http://a:1")
    job = Job(JobRequest(model="smollm2-135m", prompt="hi"))
    found = queen.candidates(job, "smollm2-135m", hives)
    assert [(c.hive, c.device, c.worker_id) for c in found] == [
        ("alpha", "cpu", "w1"),
        ("alpha", "cpu", None),
        ("beta", "cuda:0", None),
        ("beta", "cpu", None),
    ]
    pinned = Job(JobRequest(model="smollm2-135m", prompt="hi", device="cuda:0"))
    assert [(c.hive, c.device) for c in queen.candidates(pinned, "smollm2-135m", hives)] == [
        ("beta", "cuda:0")
    ]


def test_the_default_policy_prefers_the_loaded_worker_then_the_gpu() -> None:
    queen, hives = _queen()
    job = Job(JobRequest(model="smollm2-135m", prompt="hi"))
    choose = queen.pm.hook.rbee_schedule
    assert choose(job=job, candidates=queen.candidates(job, "smollm2-135m", hives)).device == (
        "cuda:0"
    )
    queen.workers["w1"] = WorkerRef("w1", "alpha", "smollm2-135m", "cpu", "http://a:1")
    assert choose(job=job, candidates=queen.candidates(job, "smollm2-135m", hives)).worker_id == (
        "w1"
    )
