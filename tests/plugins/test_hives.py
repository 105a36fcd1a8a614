"""The queen's hive registry, starting hives through ssh, and placement across hives."""

from __future__ import annotations

import time
from typing import Any

import pytest

from rbee_core.errors import HiveIdentity, InvalidRequest
from rbee_core.job_request import JobRequest
from rbee_core.jobs import Job
from rbee_core.messages import Device, HiveHeartbeat, HiveState, WorkerInfo
from rbee_core.plugins import create_plugin_manager
from rbee_keeper.remote_hive import start_script
from rbee_keeper.ssh import SSH_COMMAND_ENV, Ssh
from rbee_queen.hives import HiveConflict, HiveRecord, HiveRegistry, UnknownHive
from rbee_queen.launcher import local_command
from rbee_queen.orchestrator import Queen, WorkerRef

CPU = Device("cpu", "CPU", 2**34, 2**33, cores=8)
GPU = Device("cuda:0", "H200", 2**37, 2**36)


def test_ssh_runs_the_script_in_sh_with_the_users_ssh(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SSH_COMMAND_ENV, raising=False)
    assert Ssh("me@gpu-box", 2222).argv("echo 'a b'") == [
        "ssh",
        "-o",
        "BatchMode=yes",
        "-o",
        "ConnectTimeout=10",
        "-p",
        "2222",
        "--",
        "me@gpu-box",
        "sh -c 'echo '\"'\"'a b'\"'\"''",
    ]


def test_rbee_ssh_command_replaces_the_program(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SSH_COMMAND_ENV, "ssh -F '/tmp/my config'")
    assert Ssh("box").argv("true")[:3] == ["ssh", "-F", "/tmp/my config"]


def test_the_start_script_reads_the_key_from_stdin_and_quotes_what_sh_would_split() -> None:
    script = start_script(
        name="box 1",
        queen_url="http://q:8500/?a=b c",
        queen_port=8500,
        port=8600,
        heartbeat=2.0,
        remote_command=None,
        advertise_url=None,
    )
    assert script.startswith("IFS= read -r RBEE_API_KEY")
    assert "q='http://q:8500/?a=b c'" in script
    assert "--name 'box 1'" in script and "--detach" in script
    assert "RBEE_API_KEY=" not in script  # never on a command line


def test_a_queen_on_every_address_is_dialled_where_the_ssh_connection_came_from() -> None:
    script = start_script(
        name="box",
        queen_url=None,
        queen_port=8511,
        port=8600,
        heartbeat=2.0,
        remote_command="/opt/rbee/bin/rbee-hive",
        advertise_url="http://10.1.2.3:8600",
    )
    assert 'c="${SSH_CONNECTION%% *}"' in script and 'q="http://$c:8511"' in script
    assert "cmd=/opt/rbee/bin/rbee-hive" in script
    assert "--advertise-url http://10.1.2.3:8600" in script


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
    worker = WorkerInfo("w1", "alpha", "m", "cpu", "http://127.0.0.1:2")
    beat = HiveHeartbeat("alpha", "http://127.0.0.1:1", [worker], ["m"])
    registry.heartbeat(beat, record.secret)
    assert record.state == "ready" and record.first_heartbeat.is_set()
    assert record.workers == [worker] and record.models == ["m"]


def test_a_name_taken_by_a_live_hive_is_refused_but_a_restart_is_not() -> None:
    registry = HiveRegistry(timeout=5)
    first = registry.register("alpha", "http://127.0.0.1:1")
    with pytest.raises(HiveConflict, match=r"already registered from http://127\.0\.0\.1:1"):
        registry.register("alpha", "http://127.0.0.1:2")
    again = registry.register("alpha", "http://127.0.0.1:1")  # it restarted there
    assert again.url == "http://127.0.0.1:1" and again.secret != first.secret
    with pytest.raises(HiveIdentity):  # the old secret stopped working
        registry.heartbeat(HiveHeartbeat("alpha", "http://127.0.0.1:1"), first.secret)
    registry.heartbeat(HiveHeartbeat("alpha", "http://127.0.0.1:1"), again.secret)


def test_an_unreachable_hives_name_stays_bound_to_its_url_but_for_the_hive_the_queen_started() -> (
    None
):
    registry = HiveRegistry(timeout=5)
    registry.register("alpha", "http://127.0.0.1:1")
    registry.get("alpha").state = HiveState.UNREACHABLE
    with pytest.raises(HiveConflict, match="its name stays bound to that URL") as caught:
        registry.register("alpha", "http://127.0.0.1:2")  # whoever waited for it to die
    assert "rbee-keeper hive stop alpha" in caught.value.message
    assert registry.register("alpha", "http://127.0.0.1:1").url == "http://127.0.0.1:1"
    # The hive the queen started itself came back on another port, with its launch token.
    registry.get("alpha").state = HiveState.UNREACHABLE
    moved = registry.register("alpha", "http://127.0.0.1:2", launched=True)
    assert moved.url == "http://127.0.0.1:2"


def test_a_heartbeat_without_the_hives_secret_changes_nothing() -> None:
    registry = HiveRegistry(timeout=5)
    record = registry.register("alpha", "http://127.0.0.1:1")
    forged = HiveHeartbeat(
        "alpha",
        "http://127.0.0.1:1",
        [WorkerInfo("evil", "alpha", "m", "cpu", "http://127.0.0.1:9")],
        ["stolen"],
    )
    for secret in (None, "", "guess", record.secret[:-1]):
        with pytest.raises(HiveIdentity, match="without the secret") as caught:
            registry.heartbeat(forged, secret)
        assert caught.value.status == 403 and caught.value.code == "hive_identity"
    with pytest.raises(HiveIdentity, match=r"registered from http://127\.0\.0\.1:1"):
        registry.heartbeat(HiveHeartbeat("alpha", "http://127.0.0.1:9"), record.secret)
    assert record.workers == [] and record.models == [] and record.last_heartbeat is None
    assert "secret" not in record.to_json() and record.secret not in repr(record)


def test_unknown_hive_names_the_known_ones() -> None:
    registry = HiveRegistry(timeout=5)
    registry.register("alpha", "http://127.0.0.1:1")
    with pytest.raises(UnknownHive, match="no hive named 'ghost'; hives: alpha"):
        registry.heartbeat(HiveHeartbeat("ghost", "http://127.0.0.1:9"), None)
    with pytest.raises(UnknownHive) as info:
        registry.get("ghost")
    assert info.value.status == 404


def test_silent_hives_are_found_after_the_timeout() -> None:
    registry = HiveRegistry(timeout=1.0)
    record = registry.register("alpha", "http://127.0.0.1:1")
    record.devices = [CPU]
    registry.heartbeat(HiveHeartbeat("alpha", "http://127.0.0.1:1"), record.secret)
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
    queen = Queen(create_plugin_manager("queen"))
    hives = []
    for name, devices in (("alpha", [CPU]), ("beta", [GPU, CPU])):
        record = HiveRecord(name, f"http://{name}:8600", state="ready")
        record.devices = devices
        queen.hives.hives[name] = record
        hives.append(record)
    return queen, hives


def test_candidates_cover_every_hive_and_honour_a_device_pin() -> None:
    queen, hives = _queen()
    job = Job(JobRequest(model="smollm2-135m", prompt="hi"))
    found = queen.placement.candidates(job, "smollm2-135m", hives)
    # No worker of the model yet: every device of every hive may start one.
    assert {(c.hive, c.device, c.worker_id) for c in found} == {
        ("alpha", "cpu", None),
        ("beta", "cuda:0", None),
        ("beta", "cpu", None),
    }
    pinned = Job(JobRequest(model="smollm2-135m", prompt="hi", device="cuda:0"))
    assert [
        (c.hive, c.device) for c in queen.placement.candidates(pinned, "smollm2-135m", hives)
    ] == [("beta", "cuda:0")]
    # A worker with room: the job goes there or waits; no device is offered for another.
    queen.workers["w1"] = WorkerRef("w1", "alpha", "smollm2-135m", "cpu", "http://a:1")
    found = queen.placement.candidates(job, "smollm2-135m", hives)
    assert [(c.hive, c.device, c.worker_id, c.has_room) for c in found] == [
        ("alpha", "cpu", "w1", True)
    ]


def test_the_default_policy_prefers_the_loaded_worker_then_the_gpu() -> None:
    queen, hives = _queen()
    job = Job(JobRequest(model="smollm2-135m", prompt="hi"))
    choose = queen.pm.hook.rbee_schedule
    assert choose(
        job=job, candidates=queen.placement.candidates(job, "smollm2-135m", hives)
    ).device == ("cuda:0")
    queen.workers["w1"] = WorkerRef("w1", "alpha", "smollm2-135m", "cpu", "http://a:1")
    assert choose(
        job=job, candidates=queen.placement.candidates(job, "smollm2-135m", hives)
    ).worker_id == ("w1")


def test_a_hive_url_of_every_address_is_refused_naming_the_way_out() -> None:
    from rbee_queen.hive_routes import _name_and_url

    for url in ("http://0.0.0.0:8600", "http://[::]:8600"):
        with pytest.raises(InvalidRequest, match="nobody can dial") as caught:
            _name_and_url({"name": "h2", "url": url})
        assert "--advertise-url" in caught.value.message
    assert _name_and_url({"name": "h2", "url": "http://10.0.0.2:8600/"}) == (
        "h2",
        "http://10.0.0.2:8600",
    )


def test_daemons_refuse_every_address_without_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    from rbee_http.auth import open_bind_refusal

    monkeypatch.delenv("RBEE_API_KEY", raising=False)
    assert open_bind_refusal("rbee-hive", "127.0.0.1") is None
    refusal = open_bind_refusal("rbee-hive", "0.0.0.0")
    assert refusal is not None and refusal.startswith(
        "rbee-hive: refusing to listen on 0.0.0.0 without an API key"
    )
    monkeypatch.setenv("RBEE_API_KEY", "k")
    assert open_bind_refusal("rbee-hive", "0.0.0.0") is None


def test_addresses() -> None:
    from rbee_core.addresses import is_loopback_host, is_unspecified, with_host

    assert is_unspecified("0.0.0.0") and is_unspecified("[::]") and not is_unspecified("::1")
    assert is_loopback_host("localhost") and is_loopback_host("[::1]")
    assert not is_loopback_host("10.0.0.1") and not is_unspecified("box")
    assert with_host("http://0.0.0.0:8600", "10.0.0.2") == "http://10.0.0.2:8600"
    assert with_host("http://0.0.0.0:8600", "fe80::1") == "http://[fe80::1]:8600"
