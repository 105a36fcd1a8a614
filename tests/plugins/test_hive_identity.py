"""A hive is who it says: the real hive's registration against the real queen routes, in one
process (each side's HTTP client reaches the other's ASGI app), and the hive's side of the
checks: its /identity proof, and its workers' tokens (rbee_core.peer_identity)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.datastructures import State

from rbee_core import create_plugin_manager
from rbee_core.errors import InvalidRequest, WorkerIdentity
from rbee_core.messages import WorkerHeartbeat
from rbee_core.peer_identity import HIVE_TOKEN_HEADER, WORKER_TOKEN_ENV, proof, same_secret
from rbee_hive.hive import Hive
from rbee_hive.routes import HIVE_ROUTES
from rbee_hive.workers import WorkerProcess
from rbee_http.errors import error_handlers
from rbee_queen.app import create_app
from rbee_queen.orchestrator import Queen


class NoModels:
    """The model store as registration uses it: the names of the models it has."""

    def entries(self) -> list[Any]:
        return []

    def close(self) -> None:
        pass


def _hive(**options: Any) -> Hive:
    return Hive("alpha", NoModels(), url="http://alpha.test:8600", **options)  # type: ignore[arg-type]


def test_a_hive_proves_its_nonce_only_while_it_registers() -> None:
    hive = _hive()
    assert hive.identity("c" * 22) == {"name": "alpha", "proof": None}
    hive._nonce = "n" * 43
    said = hive.identity("c" * 22)
    assert said == {"name": "alpha", "proof": proof("n" * 43, "alpha", "c" * 22)}
    assert said["proof"] != proof("n" * 43, "beta", "c" * 22)  # the name is part of it
    for challenge in ("", "c" * 257):
        with pytest.raises(InvalidRequest, match="challenge must be"):
            hive.identity(challenge)


class FakeProcess:
    pid = os.getpid()
    returncode = None
    stdout = None


def test_a_worker_heartbeat_needs_that_workers_token() -> None:
    hive = _hive()
    worker = WorkerProcess(
        "worker-1-1",
        "m",
        "llamacpp",
        "cpu",
        "http://127.0.0.1:9",
        FakeProcess(),
        Path("x"),  # type: ignore[arg-type]
    )
    worker.token = "t" * 43
    hive.workers[worker.id] = worker
    forged = WorkerHeartbeat(jobs_served=999)
    for token in (None, "", "guess", "t" * 42):
        with pytest.raises(WorkerIdentity, match="without the token") as caught:
            hive.worker_heartbeat(worker.id, forged, token)
        assert caught.value.status == 403
    assert worker.jobs_served == 0
    hive.worker_heartbeat(worker.id, WorkerHeartbeat(jobs_served=3), "t" * 43)
    assert worker.jobs_served == 3


def test_a_workers_token_goes_in_its_environment_never_its_command_line() -> None:
    from rbee_hive import workers

    seen: dict[str, Any] = {}

    async def launch(argv: list[str], env: dict[str, str], *_: Any) -> Any:
        seen.update(argv=argv, env=env)
        raise RuntimeError("stop here")

    model = type("M", (), {"name": "m", "path": Path("/m.gguf"), "format": "gguf"})()
    with pytest.raises(RuntimeError, match="stop here"):
        asyncio.run(workers.spawn_worker(model, "llamacpp", "cpu", print, 1.0, launch=launch))
    token = seen["env"][WORKER_TOKEN_ENV]
    assert len(token) >= 43 and not any(token in arg for arg in seen["argv"])


async def _until(done: Callable[[], bool], within: float = 10.0) -> None:
    async with asyncio.timeout(within):
        while not done():  # noqa: ASYNC110 (state of another task, no event to wait on)
            await asyncio.sleep(0.01)


def test_a_real_hive_registers_with_the_real_queen_and_its_heartbeats_carry_its_secret() -> None:
    async def main() -> None:
        queen = Queen(create_plugin_manager("queen"), url="http://127.0.0.1:8500")
        hive = _hive(queen_url="http://127.0.0.1:8500", heartbeat=0.05)
        hive_app = Litestar(
            route_handlers=HIVE_ROUTES,
            state=State({"hive": hive, "pm": create_plugin_manager("hive"), "tasks": set()}),
            exception_handlers=error_handlers,
        )
        queen_app: Any = create_app(queen, stop=lambda: None)
        await queen.http.aclose()
        queen.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=hive_app))
        await hive.http.aclose()
        hive.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=queen_app))
        beating = asyncio.create_task(hive._heartbeat_queen())
        try:
            await _until(lambda: bool((r := queen.hives.find("alpha")) and r.last_heartbeat))
            record = queen.hives.get("alpha")
            assert record.url == "http://alpha.test:8600"
            assert hive._secret is not None and same_secret(hive._secret, record.secret)
            assert hive._nonce is None  # it proves nothing once it joined
            # A forged heartbeat is refused; the hive's own go on.
            beat = {"name": "alpha", "url": record.url, "models": ["stolen"]}
            answer = await hive.http.post("http://127.0.0.1:8500/hives/heartbeat", json=beat)
            assert answer.status_code == 403 and record.models == []
            seen = record.last_heartbeat
            await _until(lambda: record.last_heartbeat != seen)
            # A new secret (as if it registered again elsewhere): it registers again.
            record.secret = "replaced"
            await _until(lambda: queen.hives.get("alpha").secret != "replaced")
            current = queen.hives.get("alpha")
            assert same_secret(hive._secret, current.secret)
            headers = {HIVE_TOKEN_HEADER: "replaced"}
            answer = await hive.http.post(
                "http://127.0.0.1:8500/hives/heartbeat", json=beat, headers=headers
            )
            assert answer.status_code == 403
        finally:
            beating.cancel()
            await asyncio.gather(beating, return_exceptions=True)
            await queen.close()
            await hive.http.aclose()

    asyncio.run(main())


@pytest.mark.parametrize(
    ("queen", "url", "own"),
    [
        ("http://127.0.0.1:8500", "http://127.0.0.1:8500", True),
        ("http://127.0.0.1:8500", "http://localhost:8500/", True),
        ("http://127.0.0.1:8500", "http://127.0.0.1:8600", False),
        ("http://127.0.0.1:8500", "http://192.0.2.1:8500", False),  # TEST-NET: not this box
        ("http://0.0.0.0:8500", "http://127.0.0.1:8500", True),  # every address: any of ours
        ("http://0.0.0.0:8500", "http://192.0.2.1:8500", False),
        ("http://127.0.0.1:80", "http://localhost", True),  # the scheme's port
    ],
)
def test_the_queens_own_url_is_known_by_port_and_address(queen: str, url: str, own: bool) -> None:
    from rbee_queen.fleet import Fleet

    async def check() -> bool:
        fleet = Fleet(queen, heartbeat=1.0, hive_timeout=None)
        try:
            await fleet.check_not_queen(url)
        except InvalidRequest as exc:
            assert exc.field == "url" and "is the queen's own address" in exc.message
            return True
        finally:
            await fleet.http.aclose()
        return False

    assert asyncio.run(check()) is own
